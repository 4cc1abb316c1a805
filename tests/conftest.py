"""Shared fixtures and the one fit helper: toy corpora made here, toy bundles trained once per test run, an
isolated cache, and the real-data root."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "big", "small", "ran", "to", "house", "red",
         "blue", "saw", "it", "and"]


if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SEQ2TEXT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["SEQ2TEXT_PREPARED"] = str(tmp_path_factory.mktemp("prepared"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


POS, NEG = ["good", "great", "fun", "lovely", "superb"], ["bad", "awful", "dull", "boring", "poor"]
FILL = ["the", "movie", "was", "a", "film", "plot", "and", "very", "quite", "it"]
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "läuft": "runs", "schläft": "sleeps", "ein": "a",
           "rote": "red", "große": "big", "im": "in the", "park": "park", "haus": "house", "und": "and",
           "sieht": "sees", "mann": "man", "frau": "woman", "kleine": "small", "auf": "on", "straße": "street"}


def toy_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


def toy_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """(text, label) rows whose label is the sentiment of the one POS/NEG word among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = [rng.choice(FILL) for _ in range(rng.randint(2, 12))]
        words.insert(rng.randint(0, len(words)), rng.choice(POS if label else NEG))
        rows.append((" ".join(words), str(label)))
    return rows


def toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Raw, cased 'German' sentences with a period and their word-by-word 'English' translation."""
    rng, words = random.Random(seed), sorted(LEXICON)
    pairs = []
    for _ in range(n):
        de = [rng.choice(words) for _ in range(rng.randint(2, 8))]
        src, trg = " ".join(de), " ".join(LEXICON[w] for w in de)
        pairs.append((src[0].upper() + src[1:] + ".", trg[0].upper() + trg[1:] + "."))
    return pairs


def write_pairs(folder: Path, prefix: str, pairs: list[tuple[str, str]], langs: tuple[str, str] = ("de", "en")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for side, lang in enumerate(langs):
        (folder / f"{prefix}.{lang}").write_text("\n".join(p[side] for p in pairs) + "\n", encoding="utf-8")


def write_ptb(root: Path, sizes: tuple[int, int, int]) -> None:
    """PTB-named toy LM files (train, valid, test lines; seeds 0, 1, 2)."""
    for split, n, seed in zip(("train", "valid", "test"), sizes, range(3), strict=True):
        (root / f"ptb.{split}.txt").write_text("\n".join(toy_lines(n, seed)) + "\n")


def write_sst(root: Path, sizes: tuple[int, int, int]) -> None:
    """SST-2-named toy tables (train, dev, test_labeled rows; seeds 0, 1, 2), columns sentence and label."""
    root.mkdir(parents=True, exist_ok=True)
    for name, n, seed in zip(("train", "dev", "test_labeled"), sizes, range(3), strict=True):
        body = "".join(f"{text}\t{label}\n" for text, label in toy_rows(n, seed))
        (root / f"{name}.tsv").write_text("sentence\tlabel\n" + body)


def write_multi30k(root: Path, sizes: tuple[int, int, int]) -> None:
    """Multi30k-named toy de/en files (train, val, test_2016_flickr pairs; seeds 0, 1, 2)."""
    for prefix, n, seed in zip(("train", "val", "test_2016_flickr"), sizes, range(3), strict=True):
        write_pairs(root, prefix, toy_pairs(n, seed))


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


QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# tiny network sizes for each task's recipe (the toy corpora above are learnt in seconds with these)
TINY_LM = ["--model.init_args.emb_size", "16", "--model.init_args.hidden_size", "24",
           "--model.init_args.adaptive_cutoffs", "[]", "--data.init_args.batch_size", "4",
           "--data.init_args.bptt", "8", "--trainer.precision", "32", *QUIET]
TINY_CLS = ["--model.init_args.network.emb_size", "16", "--model.init_args.network.hidden_size", "16",
            "--data.init_args.eval_max_tokens", "100000", *QUIET]
TINY_MT = ["--data.init_args.tokenizer_vocab_size", "100", "--data.init_args.max_tokens", "300",
           "--model.init_args.network.emb_size", "32", "--model.init_args.network.hidden_size", "32", *QUIET]


# ------------------------------------------------------------------------------------------ fitting
def fit_command(recipe: str, out: Path, *args: str) -> list[str]:
    """`seq2text fit` arguments for `recipes/<recipe>` with overrides: logs under `out/runs`, bundle
    `out/bundle` (later arguments win, so `args` may name another bundle)."""
    return ["fit", "--config", str(REPO / "recipes" / recipe), "--trainer.default_root_dir", str(out),
            "--trainer.logger.init_args.save_dir", str(out / "runs"), "--bundle", str(out / "bundle"), *args]


def run_fit(recipe: str, out: Path, *args: str) -> int:
    """Runs `seq2text fit` in this process and returns its exit code (for refused configurations)."""
    from seq2text.cli import main

    return main(fit_command(recipe, out, *args))


def fit(recipe: str, out: Path, *args: str) -> Path:
    """`seq2text fit` in this process, which must succeed; returns the bundle."""
    assert run_fit(recipe, out, *args) == 0
    return out / "bundle"


def fit_process(recipe: str, out: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`seq2text fit` in a child process with one intra-op thread (DDP launches, runs that get killed)."""
    command = [sys.executable, "-m", "seq2text.cli", *fit_command(recipe, out, *args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread in this process: an in-process run then computes exactly as `fit_process` does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def perturbed(member: object, scale: float = 0.3, seed: int = 0) -> object:
    """`member` (a predictor) with `scale` × N(0, 1) added to every weight: an ensemble member that predicts
    otherwise. Returns it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in member.net.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return member


# ------------------------------------------------------------------------------------------ toy bundles
@pytest.fixture(scope="session")
def lm_bundle(toy_lm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy PTB-recipe language model, trained once per test run (tests copy it before changing it)."""
    return fit("ptb_lstm_small.yaml", tmp_path_factory.mktemp("lm_bundle"), "--data.init_args.root",
               str(toy_lm_dir), *TINY_LM, "--trainer.max_epochs", "2")


@pytest.fixture(scope="session")
def classifier_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy SST-2-recipe classifier, trained once per test run."""
    root = tmp_path_factory.mktemp("toy_sst_session")
    write_sst(root, (120, 20, 20))
    return fit("sst2_bilstm.yaml", tmp_path_factory.mktemp("classifier_bundle"), "--data.init_args.root", str(root),
               *TINY_CLS, "--trainer.max_epochs", "1")


@pytest.fixture(scope="session")
def translator_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy Multi30k-recipe translator, trained once per test run."""
    root = tmp_path_factory.mktemp("toy_mt_session")
    write_multi30k(root, (120, 15, 15))
    return fit("multi30k_bigru_attention.yaml", tmp_path_factory.mktemp("translator_bundle"),
               "--data.init_args.root", str(root), *TINY_MT, "--data.init_args.tokenizer_vocab_size", "80",
               "--model.init_args.network.emb_size", "16", "--model.init_args.network.hidden_size", "16",
               "--model.init_args.val_bleu", "false", "--model.init_args.search.beam_size", "2",
               "--trainer.max_epochs", "1", "--trainer.precision", "32")
