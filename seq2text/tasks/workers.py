"""Jobs run side by side in worker processes, supervised (`run_jobs`): the pooled searches of `seq2text fit --tune`.

    run_jobs(job, [args 0, args 1, ...], workers=W, threads=T, log=...)
      → up to W processes at a time (`worker_context`: forked from a fork server that imported torch and never ran
        it), each with T torch threads, `setup()` first (the caller's console settings: a fresh process has none)
      → each runs job(*args, log=...) and sends back its lines as they come (the parent hands them to `log`), then its
        result or its error, pickled (a tensor sent as it is would travel as a handle to the worker's shared memory,
        gone once the worker ends)
      → a process that dies without either (killed, out of memory) is started again, its job from the beginning, up to
        `restarts` times; the results already back are kept. An error raised by a job is raised here, as it is.
    ← the results, in the order of the jobs

A job's result does not depend on which process ran it, or when: a seeded job gives the same result side by side as
one after another.
"""

from __future__ import annotations

import pickle
import queue
from collections.abc import Callable, Sequence
from typing import Any

from seq2text.errors import ConfigError
from seq2text.hardware import worker_context

__all__ = ["run_jobs"]

POLL_SECONDS = 1.0  # how often the parent looks whether a worker that sent nothing has died (a liveness check only)


def run_jobs(job: Callable[..., Any], jobs: Sequence[tuple], workers: int, threads: int,
             log: Callable[[str], None], setup: Callable[[], None] | None = None, restarts: int = 2,
             preload: Sequence[str] = (), label: str = "job") -> list[Any]:
    """Runs `job(*args, log=...)` for each of `jobs` on up to `workers` processes at a time (the module's docstring).

    Args:
        job: a module-level function (it is sent to the workers by name), called with each job's arguments and `log`.
        jobs: each job's positional arguments (picklable).
        workers: processes at a time.
        threads: torch threads in each process.
        log: where each line a job logs goes (in the parent), prefixed with `label` and the job's number.
        setup: a module-level function each process runs first (None: nothing).
        restarts: how many times one job's process may die before this raises.
        preload: modules the fork server imports once.
        label: what a job is called in the lines (`[search 1] ...`) and errors.
    Returns:
        each job's result, in the order of `jobs`.
    """
    context = worker_context(["seq2text.tasks.workers", *preload])
    messages = context.Queue()
    results: dict[int, Any] = {}
    deaths = [0] * len(jobs)
    waiting, running = list(range(len(jobs))), {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                number = waiting.pop(0)
                running[number] = context.Process(target=_worker_main, name=f"seq2text-job-{number}", daemon=True,
                                                  args=(messages, job, number, jobs[number], threads, setup))
                running[number].start()
            _receive(messages, results, log, label, block=True)
            for number, process in list(running.items()):
                if number not in results and process.is_alive():
                    continue
                process.join()
                _receive(messages, results, log, label, block=False)  # what it sent before it ended
                del running[number]
                if number not in results:
                    deaths[number] += 1
                    if deaths[number] > restarts:
                        raise ConfigError(f"{label} {number}'s worker process died {deaths[number]} times (last "
                                          f"exit code {process.exitcode}); too little memory? Run with fewer "
                                          "workers (1 runs them one at a time in this process)")
                    log(f"{label} {number}: its worker process died (exit code {process.exitcode}); starting it again")
                    waiting.insert(0, number)
    finally:
        for process in running.values():
            process.kill()
            process.join()
        messages.close()
    return [_outcome(results[number]) for number in range(len(jobs))]


def _receive(messages: Any, results: dict[int, Any], log: Callable[[str], None], label: str,  # noqa: ANN401
             block: bool) -> None:
    """Hands on every message waiting (the first one waited for up to POLL_SECONDS when `block`): lines to `log`,
    results and errors to `results`."""
    while True:
        try:
            kind, number, payload = messages.get(timeout=POLL_SECONDS) if block else messages.get_nowait()
        except queue.Empty:
            return
        block = False
        if kind == "log":
            log(f"[{label} {number}] {payload}")
        else:
            results[number] = (kind, pickle.loads(payload))
            if kind == "error":  # raised at once: the other jobs are stopped in `run_jobs`' finally
                _outcome(results[number])


def _outcome(result: tuple[str, Any]) -> Any:  # noqa: ANN401
    kind, payload = result
    if kind == "error":
        raise payload
    return payload


def _worker_main(messages: Any, job: Callable[..., Any], number: int, args: tuple, threads: int,  # noqa: ANN401
                 setup: Callable[[], None] | None) -> None:
    import torch

    torch.set_num_threads(threads)
    if setup is not None:
        setup()

    def log(line: str) -> None:
        messages.put(("log", number, line))

    try:
        kind, payload = "done", pickle.dumps(job(*args, log=log))
    except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it
        kind, payload = "error", _pickled_error(error)
    messages.put((kind, number, payload))
    messages.close()
    messages.join_thread()  # everything sent before the process ends


def _pickled_error(error: Exception) -> bytes:
    """The error pickled, or a RuntimeError with its text where it does not pickle (or unpickle) as it is."""
    try:
        pickled = pickle.dumps(error)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001 - any failure means: send a copy that pickles
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))
    return pickled
