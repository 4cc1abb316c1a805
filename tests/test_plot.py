"""Pictures (issue 16): the attention plot of `translate --plot-attention` and a run's training curves
(`seq2text plot`), drawn with matplotlib (the `plot` extra, installed by the `dev` extra)."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import seq2text
from seq2text.bundles.plot import find_metrics_csv, plot_training_curves, read_metrics_csv
from seq2text.cli import main
from seq2text.errors import ConfigError, DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADER = ["epoch", "step", "lr-Adam", "train/loss", "val/loss", "val/ppl"]  # Lightning sorts the columns


def read_png(path: Path) -> np.ndarray:
    """The pixels (height, width, RGBA in [0, 1]) of a file that must be a PNG."""
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return imread(path)


def assert_drawn(pixels: np.ndarray, inked: float = 0.02) -> None:
    """Not blank: many distinct colours (text, lines) and at least the `inked` share of pixels not white."""
    rgb = pixels[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 20
    assert (rgb < 0.99).any(axis=1).mean() > inked


def write_lightning_csv(path: Path, steps: int = 300, every: int = 10, val_every: int = 500) -> Path:
    """A sparse metrics.csv as Lightning's CSVLogger writes it: train rows (loss, lr) and val rows (loss, ppl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for k in range(steps):
            step = (k + 1) * every
            writer.writerow([step // 1000, step, 1e-3 * (1 - k / steps), 6.0 * np.exp(-k / 80) + 1.5, "", ""])
            if step % val_every == 0:
                loss = 5.0 * np.exp(-k / 100) + 1.8
                writer.writerow([step // 1000, step, "", "", loss, float(np.exp(loss))])
    return path


# ------------------------------------------------------------------------------------------ attention
def test_translate_draws_the_attention_of_the_first_sentence(translator_bundle: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    png, sentence = tmp_path / "attention.png", "Der hund läuft im park."
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"\n{sentence}\nEin mann.\n".encode())))
    assert main(["translate", "--model", str(translator_bundle), "--beam", "2", "--plot-attention", str(png)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and str(png) in captured.err
    pixels = read_png(png)
    assert_drawn(pixels, inked=0.4)  # the heat map fills most of it (a toy model's near-uniform attention: grey)
    # the empty first line has no attention: the picture is the second line's, 100 dpi, 0.4 inch a piece
    best = seq2text.load(translator_bundle).translate_nbest([sentence], beam_size=2, return_attention=True)[0][0]
    width, height = 100 * (1 + 0.4 * len(best.source_tokens)), 100 * (1 + 0.4 * (len(best.tokens) + 1))
    assert abs(pixels.shape[1] - width) <= 1 and abs(pixels.shape[0] - height) <= 1
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left


# ------------------------------------------------------------------------------------------ training curves
def test_sparse_rows_become_one_series_per_column(tmp_path: Path) -> None:
    series = read_metrics_csv(write_lightning_csv(tmp_path / "metrics.csv"))
    assert sorted(series) == ["lr-Adam", "train/loss", "val/loss", "val/ppl"]
    assert len(series["train/loss"][0]) == 300 and series["train/loss"][0][:2] == [10.0, 20.0]
    assert series["val/loss"][0] == [500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0]
    assert len(series["val/ppl"][1]) == 6 and all(v > 1 for v in series["val/ppl"][1])


def test_training_curves_one_panel_per_kind(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "toy"
    write_lightning_csv(run / "version_0" / "metrics.csv")
    out = plot_training_curves(run, tmp_path / "curves.png")
    pixels = read_png(out)
    assert_drawn(pixels)
    assert pixels.shape[:2] == (720, 1280)  # loss, perplexity, learning rate: 2 x 2 panels of 6.4 x 3.6 inches
    loss = read_png(plot_training_curves(run, tmp_path / "loss.png", ["train/loss", "val/loss"]))
    assert loss.shape[:2] == (360, 640)  # train and val loss share one panel
    assert read_png(plot_training_curves(run, tmp_path / "two.png", ["val/loss", "lr-Adam"])).shape[:2] == (360, 1280)


def test_the_newest_metrics_csv_of_a_run_is_drawn(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "toy"
    old = run / "version_0" / "metrics.csv"
    old.parent.mkdir(parents=True)
    old.write_text("epoch,step,train/acc\n0,10,0.5\n0,20,0.6\n")
    new = write_lightning_csv(run / "version_1" / "metrics.csv")
    os.utime(old, (1_000_000, 1_000_000))
    assert find_metrics_csv(run) == new and find_metrics_csv(old) == old
    assert_drawn(read_png(plot_training_curves(run, tmp_path / "ppl.png", ["val/ppl"])))
    assert_drawn(read_png(plot_training_curves(old, tmp_path / "acc.png", ["train/acc"])))


def test_plot_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    write_lightning_csv(run / "version_0" / "metrics.csv")
    out = tmp_path / "pictures" / "curves.png"
    assert main(["plot", "--run", str(run), "--output", str(out), "--metrics", "train/loss", "val/ppl"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    pixels = read_png(out)
    assert_drawn(pixels)
    assert pixels.shape[:2] == (360, 1280)


# ------------------------------------------------------------------------------------------ errors
def test_no_metrics_csv_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty_run" / "version_0").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no metrics\.csv under .*empty_run.*metrics\.csv"):
        plot_training_curves(tmp_path / "empty_run", tmp_path / "x.png")
    with pytest.raises(DataError, match="does not exist"):
        plot_training_curves(tmp_path / "missing", tmp_path / "x.png")
    assert main(["plot", "--run", str(tmp_path / "empty_run"), "--output", str(tmp_path / "x.png")]) == 1
    assert "no metrics.csv under" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_csv_without_numeric_metrics_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "text" / "metrics.csv"
    text.parent.mkdir()
    text.write_text("epoch,step,note\n0,10,warm-up\n0,20,\n")
    with pytest.raises(DataError, match="no numeric metric columns"):
        plot_training_curves(text, tmp_path / "x.png")
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("epoch,step,train/loss\n")
    with pytest.raises(DataError, match="no numeric metric columns"):
        plot_training_curves(header_only, tmp_path / "x.png")
    no_step = tmp_path / "no_step.csv"
    no_step.write_text("loss,acc\n1.0,0.5\n")
    with pytest.raises(DataError, match="no `step` column"):
        plot_training_curves(no_step, tmp_path / "x.png")


def test_an_unknown_metric_lists_the_available_ones(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_lightning_csv(tmp_path / "metrics.csv")
    with pytest.raises(DataError, match=r"no numeric metric 'val/bleu'; available: lr-Adam, train/loss, val/loss, "
                                        r"val/ppl"):
        plot_training_curves(path, tmp_path / "x.png", ["train/loss", "val/bleu"])
    with pytest.raises(ConfigError, match="non-empty list"):
        plot_training_curves(path, tmp_path / "x.png", [])
    with pytest.raises(ConfigError, match=r"\.xyz"):
        plot_training_curves(path, tmp_path / "x.xyz")
    assert main(["plot", "--run", str(path), "--output", str(tmp_path / "x.png"), "--metrics", "val/acc"]) == 1
    assert "available: lr-Adam" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.xyz").exists()
