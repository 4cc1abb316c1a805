"""Shared fixtures: toy corpora made here, an isolated cache, and the real-data root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "big", "small", "ran", "to", "house", "red",
         "blue", "saw", "it", "and"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SEQ2TEXT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def toy_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="session")
def toy_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with PTB- and WikiText-named toy files (so every LM recipe can point its root here)."""
    root = tmp_path_factory.mktemp("toy_lm")
    for split, n, seed in (("train", 300, 0), ("valid", 30, 1), ("test", 30, 2)):
        text = "\n".join(toy_lines(n, seed)) + "\n"
        (root / f"ptb.{split}.txt").write_text(text)
        (root / f"wiki.{split}.tokens").write_text(text.replace("\n", "\n\n", 3))
    return root


@pytest.fixture(scope="session")
def real_data() -> Path:
    """`$SEQ2TEXT_DATA`: skip when unset; fail (never skip) when it is set but wrong."""
    value = os.environ.get("SEQ2TEXT_DATA")
    if not value:
        pytest.skip("SEQ2TEXT_DATA is not set (CI sets it to ../shared/data)")
    root = Path(value)
    assert root.is_dir(), f"SEQ2TEXT_DATA={value} is not a directory"
    return root


TINY_LM = [
    "--model.init_args.emb_size", "16", "--model.init_args.hidden_size", "24",
    "--model.init_args.adaptive_cutoffs", "[]", "--data.init_args.batch_size", "4",
    "--data.init_args.bptt", "8", "--trainer.enable_progress_bar", "false", "--trainer.precision", "32",
    "--trainer.enable_model_summary", "false",
]
