"""Jobs side by side in supervised worker processes (`seq2text.tasks.workers.run_jobs`)."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

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


def _tensor(size: int, log: Callable[[str], None]) -> torch.Tensor:
    return torch.arange(size, dtype=torch.float32)


def _unpicklable(log: Callable[[str], None]) -> Callable[[], None]:
    return lambda: None


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


def test_a_result_holding_tensors_comes_back_whole_after_its_worker_ended() -> None:
    """Sent as they are, tensors would travel as handles to the worker's shared memory, gone once it ends: the results
    come back pickled. A result that does not pickle is an error of its job."""
    results = run_jobs(_tensor, [(3,), (200_000,)], workers=2, threads=1, log=lambda _: None)
    assert torch.equal(results[0], torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(results[1], torch.arange(200_000, dtype=torch.float32))
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError), match="(?i)pickle"):
        run_jobs(_unpicklable, [()], workers=1, threads=1, log=lambda _: None)
