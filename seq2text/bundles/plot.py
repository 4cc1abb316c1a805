"""Pictures (a translation's attention, a run's training curves) drawn with matplotlib on the Agg canvas (no
display, no pyplot state): an optional extra (`pip install seq2text[plot]`), imported only when asked for."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from seq2text.errors import ConfigError, DataError, Seq2TextError
from seq2text.text.textio import atomic_open

__all__ = ["attention_plotter", "plot_training_curves", "find_metrics_csv", "read_metrics_csv"]

Series = dict[str, tuple[list[float], list[float]]]  # metric name -> (steps, values)

# panel titles of the known kinds of series (the last part of a metric name); other kinds get a panel each
_KINDS = {"loss": "loss", "nll": "loss", "ppl": "perplexity", "bleu": "BLEU / chrF / TER", "chrf": "BLEU / chrF / TER",
          "ter": "BLEU / chrF / TER", "acc": "accuracy / F1", "f1": "accuracy / F1"}
_LR = "learning rate"
_ORDER = {"loss": 0, "perplexity": 1, "BLEU / chrF / TER": 2, "accuracy / F1": 3, _LR: 9}
_SPLITS = {"train": 0, "val": 1, "test": 2}
_COUNTS = ("tokens", "trg_tokens", "words", "examples", "windows")


def _agg(purpose: str) -> tuple[type, type]:
    """matplotlib's Agg canvas and Figure classes, or a Seq2TextError that says how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise Seq2TextError(f"{purpose} needs matplotlib, which is not installed: pip install seq2text[plot]") from None
    return FigureCanvasAgg, Figure


def _save(canvas: object, output: str | Path) -> Path:
    """Writes the canvas' figure atomically to `output`, in the format its suffix names (default PNG)."""
    output = Path(output)
    kind = output.suffix.lstrip(".").lower() or "png"
    if kind not in canvas.get_supported_filetypes():
        raise ConfigError(f"cannot write {output}: matplotlib writes no .{kind} pictures; name a .png (or .pdf, .svg)")
    with atomic_open(output, "wb") as handle:
        canvas.figure.savefig(handle, format=kind)
    return output


def attention_plotter() -> Callable[[object, str], None]:
    """The attention plot of `--plot-attention`, or a clear error when matplotlib is missing."""
    canvas_class, figure_class = _agg("--plot-attention (translation itself works without it: drop the option)")

    def draw(translation: object, path: str) -> None:
        rows = [*translation.tokens, "</s>"]
        fig = figure_class(figsize=(1 + 0.4 * len(translation.source_tokens), 1 + 0.4 * len(rows)), dpi=100)
        ax = fig.add_subplot()
        ax.imshow(translation.attention.float().numpy(), cmap="Greys", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(translation.source_tokens)), translation.source_tokens, rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        fig.tight_layout()
        _save(canvas_class(fig), path)

    return draw


def find_metrics_csv(run: str | Path) -> Path:
    """`run` itself when it is a file, else the newest `metrics.csv` under the directory `run`."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise DataError(f"{run} does not exist; give a run directory (e.g. runs/NAME) or its metrics.csv")
    found = [path for path in run.rglob("metrics.csv") if path.is_file()]
    if not found:
        raise DataError(f"no metrics.csv under {run} (looked for {run}/**/metrics.csv); give the directory where "
                        "Lightning's CSVLogger wrote the run (e.g. runs/NAME/version_0), or train with a CSVLogger "
                        "(the recipes' trainer.logger)")
    return max(found, key=lambda path: (path.stat().st_mtime, str(path)))


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_metrics_csv(path: str | Path) -> Series:
    """The numeric series of a Lightning CSVLogger file: each metric column's (steps, values) on the rows where it
    has one (the rows are sparse). Columns with text cells and non-finite values are left out."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path} ({error}); give a metrics.csv written by Lightning's CSVLogger") from None
    if not rows or "step" not in rows[0]:
        raise DataError(f"{path} has no `step` column, so it is no metrics.csv of Lightning's CSVLogger; give the run "
                        "directory or its version_K/metrics.csv")
    header, at = rows[0], rows[0].index("step")
    columns: Series = {name: ([], []) for name in header if name not in ("epoch", "step")}
    text: set[str] = set()
    for row in rows[1:]:
        step = _number(row[at]) if at < len(row) else None
        for name, cell in zip(header, row, strict=False):  # a short row leaves the rest empty
            if name not in columns or step is None or not cell.strip():
                continue
            value = _number(cell)
            if value is None:
                text.add(name)
            elif math.isfinite(value):
                columns[name][0].append(step)
                columns[name][1].append(value)
    series = {name: points for name, points in columns.items() if name not in text and points[1]}
    if not series:
        raise DataError(f"{path} has no numeric metric columns (columns: {', '.join(header)}); give the metrics.csv "
                        "of a run that logged at least one step")
    return series


def _chosen(series: Series, metrics: Sequence[str] | None, path: Path) -> list[str]:
    """The metric names to draw: `metrics` (checked), or every series but the bookkeeping ones."""
    if metrics is None:
        return [name for name in series  # counts, throughput and confusion cells: only when asked for by name
                if not (name.rsplit("/", 1)[-1] in _COUNTS or name.endswith("_per_sec") or "confusion/" in name)
                ] or list(series)
    if isinstance(metrics, str) or not metrics:
        raise ConfigError("metrics must be a non-empty list of metric names (e.g. ['train/loss', 'val/loss']) or "
                          "None for all")
    unknown = [name for name in metrics if name not in series]
    if unknown:
        raise DataError(f"{path} has no numeric metric {', '.join(map(repr, unknown))}; available: "
                        f"{', '.join(sorted(series))}")
    return list(dict.fromkeys(metrics))


def _kind(name: str) -> str:
    """The panel of a series: `train/loss` and `val/loss` share `loss`; `train/lr`, `lr-Adam` the learning rate."""
    parts = name.split("/")
    if any(part == "lr" or part.startswith("lr-") for part in parts):
        return _LR
    return _KINDS.get(parts[-1], parts[-1])


def _panels(names: Sequence[str], series: Series, curves_only: bool) -> dict[str, list[str]]:
    """Panel title -> its series names (train, val, then test), loss first and the learning rate last;
    `curves_only` leaves out the panels with no series of two points or more (e.g. test-only metrics)."""
    panels: dict[str, list[str]] = {}
    for name in sorted(names, key=lambda name: _SPLITS.get(name.split("/")[0], 3)):
        panels.setdefault(_kind(name), []).append(name)
    curves = {kind: members for kind, members in panels.items() if any(len(series[n][1]) > 1 for n in members)}
    return dict(sorted((curves if curves_only and curves else panels).items(), key=lambda item: _ORDER.get(item[0], 5)))


def _draw(figure_class: type, panels: dict[str, list[str]], series: Series, title: str) -> object:
    """A figure of one panel per kind, two panels a row, each series against the step."""
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    figure = figure_class(figsize=(6.4 * cols, 3.6 * rows), dpi=100, layout="constrained")
    for number, (kind, names) in enumerate(panels.items(), start=1):
        ax = figure.add_subplot(rows, cols, number)
        for name in names:
            steps, values = series[name]
            ax.plot(steps, values, label=name, marker="o" if len(values) <= 30 else None,
                    markersize=3 if len(values) > 1 else 6)
        if kind == "perplexity" and min(min(series[name][1]) for name in names) > 0:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # a flat learning rate reads 0.01, not 1e-6+9.999e-3
        ax.set(title=kind, xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(title, fontsize="small")
    return figure


def plot_training_curves(run: str | Path, output: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Draws the curves of `run` (a run directory, its newest `metrics.csv` read, or a CSVLogger `metrics.csv`)
    against the step, one panel per kind of series, and writes the picture atomically to `output` (.png, .pdf,
    .svg); returns it. `metrics`: the columns to draw (default: all but counts, throughput and confusion cells)."""
    canvas_class, figure_class = _agg("seq2text plot")
    path = find_metrics_csv(run)
    series = read_metrics_csv(path)
    panels = _panels(_chosen(series, metrics, path), series, curves_only=metrics is None)
    return _save(canvas_class(_draw(figure_class, panels, series, str(path))), output)
