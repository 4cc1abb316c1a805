"""Pictures, drawn with matplotlib (an optional dependency: imported only when a picture is asked for)."""

from __future__ import annotations

from collections.abc import Callable

from seq2text.errors import Seq2TextError

__all__ = ["attention_plotter"]


def attention_plotter() -> Callable[[object, str], None]:
    """The attention plot of `--plot-attention`, or a clear error when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise Seq2TextError("--plot-attention needs matplotlib, which is not installed (pip install matplotlib); "
                            "translation itself works without it: drop --plot-attention") from None

    def draw(translation: object, path: str) -> None:
        rows = [*translation.tokens, "</s>"]
        fig, ax = plt.subplots(figsize=(1 + 0.4 * len(translation.source_tokens), 1 + 0.4 * len(rows)))
        ax.imshow(translation.attention.float().numpy(), cmap="Greys", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(translation.source_tokens)), translation.source_tokens, rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    return draw
