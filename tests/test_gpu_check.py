"""benchmarks/gpu_check.py runs each task's recipe on CUDA when a GPU is lent; here its --smoke mode runs the
same code path on a CPU so that the script is known to work before the one GPU run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_gpu_check_smoke_writes_throughput_for_every_task(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--smoke", "--output", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    entry = json.loads((tmp_path / "gpu_check_smoke.json").read_text())
    assert set(entry["tasks"]) == {"language_modeling", "classification", "translation"}
    for task, found in entry["tasks"].items():
        assert found["ok"] and found["steps"] == 6 and found["tokens_per_sec"] > 0, task
    assert {"commit", "date", "machine", "torch", "command"} <= set(entry)
    assert not (REPO / "benchmarks" / "results" / "gpu_check_smoke.json").exists()
