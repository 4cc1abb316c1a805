import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seq2text.cli import main
from tests.conftest import REPO


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "fit" in out and "generate" in out
    with pytest.raises(SystemExit) as done:
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--budget" in out and "--config" in out


def test_tokenizer_train_command(tmp_path: Path, toy_lm_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tok.model"
    assert main(["tokenizer", "train", "--input", str(toy_lm_dir / "ptb.train.txt"), "--model-type", "word",
                 "--output", str(out)]) == 0
    assert out.is_file() and "word model" in capsys.readouterr().out


def test_generate_and_evaluate_commands(lm_bundle: Path, toy_lm_dir: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = lm_bundle
    capsys.readouterr()
    assert main(["generate", "--model", str(bundle), "--prompt", "the cat", "--max-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("the cat")
    assert main(["evaluate", "--model", str(bundle), "--input", str(toy_lm_dir / "ptb.test.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] > 1


def test_user_errors_have_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "is not a directory" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as typo:
        main(["fit", "--config", str(REPO / "recipes" / "ptb_lstm_small.yaml"), "--model.init_args.hiden_size", "3"])
    err = capsys.readouterr().err
    assert typo.value.code != 0 and "hiden_size" in err and "Traceback" not in err



def test_a_recipe_with_the_flat_keys_of_before_says_where_each_went(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  class_path: seq2text.tasks.TranslationTask\n  init_args:\n    emb_size: 64\n"
                   "    label_smoothing: 0.1\n    lr: 0.002\n    test_beam_size: 5\n")
    assert main(["fit", "--config", str(old), "--model.init_args.optim.lr", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "model.init_args.emb_size is now model.init_args.network.emb_size" in err
    assert "model.init_args.lr is now model.init_args.optim.lr" in err
    assert "model.init_args.test_beam_size is now model.init_args.search.beam_size" in err
    assert "label_smoothing" not in err and "Traceback" not in err  # still a translation argument of its own
    recipe = str(REPO / "recipes" / "ptb_lstm_small.yaml")
    assert main(["fit", "--config", recipe, "--model.init_args.dropout=0.1", "--model.init_args.hidden_size", "8"]) == 1
    err = capsys.readouterr().err
    assert "model.init_args.dropout is now model.init_args.regularization.dropout" in err and "hidden_size" not in err


def test_the_table_of_moved_keys_names_every_grouped_setting() -> None:
    from seq2text.cli.training import moved_keys
    from seq2text.tasks import ClassificationTask, LanguageModelTask, TranslationTask

    assert moved_keys(LanguageModelTask)["lr"] == "optim.lr" and "emb_size" not in moved_keys(LanguageModelTask)
    assert moved_keys(ClassificationTask)["discriminative_lr"] == "fine_tuning.discriminative_lr"
    assert moved_keys(ClassificationTask)["label_smoothing"] == "fine_tuning.label_smoothing"
    assert moved_keys(TranslationTask)["max_len_ratio"] == "search.max_len_ratio"
    assert "label_smoothing" not in moved_keys(TranslationTask) and "vocab_size" not in moved_keys(TranslationTask)

def test_a_fit_shows_seq2text_lines_only_and_one_line_per_validation(tmp_path: Path, toy_lm_dir: Path) -> None:
    """A short fit in a fresh process (no pytest warning filters): no dependency warnings or tips, and with the
    progress bar off one line per validation with its metric and the budget left."""
    from tests.conftest import TINY_LM, fit_process

    done = fit_process("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(toy_lm_dir), *TINY_LM,
                       "--trainer.max_epochs", "2", "--budget", "10m", "--trainer.enable_model_summary", "true")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    noise = [line for line in output.splitlines()
             if "Warning" in line or "warn(" in line or "💡" in line or "LeafSpec" in line
             or line.startswith(("Seed set to", "GPU available", "TPU available"))]
    assert noise == []
    lines = [line for line in output.splitlines() if line.startswith("epoch ") and "val/ppl" in line]
    assert len(lines) == 2 and "budget left" in lines[0] and "tokens/s" in lines[0], output


def test_translate_and_evaluate_print_no_dependency_warnings(translator_bundle: Path, tmp_path: Path) -> None:
    """`translate` and `evaluate` in fresh processes (no pytest warning filters): their output is seq2text's."""
    src, ref = tmp_path / "src.de", tmp_path / "ref.en"
    src.write_text("ein mann fährt rad .\nzwei hunde spielen .\n", encoding="utf-8")
    ref.write_text("a man rides a bike .\ntwo dogs play .\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    runs = [subprocess.run([sys.executable, "-m", "seq2text.cli", *args], input=stdin, capture_output=True, text=True,
                           cwd=REPO, env=env, timeout=300)
            for args, stdin in ((["translate", "--model", str(translator_bundle)], src.read_text(encoding="utf-8")),
                                (["evaluate", "--model", str(translator_bundle), "--src", str(src), "--ref", str(ref)],
                                 None))]
    for done in runs:
        assert done.returncode == 0, done.stderr
        assert [line for line in (done.stdout + done.stderr).splitlines() if "Warning" in line] == []
    assert len(runs[0].stdout.splitlines()) == 2 and "bleu" in runs[1].stdout.lower()
