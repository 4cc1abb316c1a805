import json
import subprocess
import sys
from pathlib import Path

import pytest

from seq2text.cli import main
from tests.conftest import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seq2text.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "fit" in result.stdout and "generate" in result.stdout
    fit_help = run_cli("fit", "--help")
    assert fit_help.returncode == 0 and "--budget" in fit_help.stdout and "--config" in fit_help.stdout


def test_tokenizer_train_command(tmp_path: Path, toy_lm_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tok.model"
    assert main(["tokenizer", "train", "--input", str(toy_lm_dir / "ptb.train.txt"), "--model-type", "word",
                 "--output", str(out)]) == 0
    assert out.is_file() and "word model" in capsys.readouterr().out


def test_generate_and_evaluate_commands(tmp_path: Path, toy_lm_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.test_lm_task import fit_toy

    bundle = fit_toy(toy_lm_dir, tmp_path)
    capsys.readouterr()
    assert main(["generate", "--model", str(bundle), "--prompt", "the cat", "--max-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("the cat")
    assert main(["evaluate", "--model", str(bundle), "--input", str(toy_lm_dir / "ptb.test.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] > 1


def test_user_errors_have_no_traceback(tmp_path: Path) -> None:
    result = run_cli("generate", "--model", str(tmp_path / "missing"))
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr
    typo = run_cli("fit", "--config", "recipes/ptb_lstm_small.yaml", "--model.init_args.hiden_size", "3")
    assert typo.returncode != 0 and "hiden_size" in typo.stderr and "Traceback" not in typo.stderr
