"""Jobs side by side in supervised worker processes (`seq2text.tasks.workers.run_jobs`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from seq2text.errors import ConfigError
from seq2text.tasks.workers import run_jobs


def _square(value: int, log: Callable[[str], None]) -> int:
    log(f"squaring {value}")
    return value * value


def _dies_once(marker: str, value: int, log: Callable[[str], None]) -> int:
    """Kills its own process the first time (no result, no error: as the out-of-memory killer would), then works."""
    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return value + 1


def _always_dies(log: Callable[[str], None]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raises(log: Callable[[str], None]) -> None:
    raise ValueError("a job's own error")


def test_jobs_run_side_by_side_their_results_in_order_and_their_lines_relayed() -> None:
    lines: list[str] = []
    assert run_jobs(_square, [(2,), (3,), (4,)], workers=2, threads=1, log=lines.append, label="search") == [4, 9, 16]
    assert sorted(lines) == ["[search 0] squaring 2", "[search 1] squaring 3", "[search 2] squaring 4"]


def test_a_worker_that_dies_is_started_again_and_the_results_back_are_kept(tmp_path: Path) -> None:
    """Job 1's process is killed once: it runs again from the start; job 0's result, back already, is not rerun."""
    lines: list[str] = []
    markers = [tmp_path / "zero", tmp_path / "one"]
    markers[0].write_text("never dies")
    assert run_jobs(_dies_once, [(str(markers[0]), 10), (str(markers[1]), 20)], workers=2, threads=1,
                    log=lines.append) == [11, 21]
    assert [line for line in lines if "died" in line] == [
        f"job 1: its worker process died (exit code {-signal.SIGKILL}); starting it again"]


def test_a_job_that_keeps_dying_stops_with_the_fix_and_a_job_error_is_raised_as_it_is() -> None:
    lines: list[str] = []
    with pytest.raises(ConfigError, match="job 0's worker process died 3 times .* Run with fewer workers"):
        run_jobs(_always_dies, [()], workers=1, threads=1, log=lines.append, restarts=2)
    assert len([line for line in lines if "starting it again" in line]) == 2
    with pytest.raises(ValueError, match="a job's own error"):
        run_jobs(_raises, [(), ()], workers=2, threads=1, log=lines.append)
