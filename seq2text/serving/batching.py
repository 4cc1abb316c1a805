"""Batching for `seq2text serve` (nothing of the HTTP side): `DynamicBatcher` per group of requests (every task),
`ContinuousBatcher` (translations join and leave a running beam search between steps), `ProcessBatcher` (a
`ContinuousBatcher` in each of several model processes, `--workers`)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from itertools import count
from typing import Any

import torch

from seq2text.text.reading import pad_ids

__all__ = ["BatchCounters", "ContinuousBatcher", "DynamicBatcher", "ProcessBatcher"]

log = logging.getLogger(__name__)


@dataclass
class BatchCounters:
    """What the batcher did so far (shown by /info)."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    steps: int = 0  # continuous batching: decoding steps, and sentences summed over them
    step_sentences: int = 0


def _settle(future: asyncio.Future, result: object = None, error: BaseException | None = None) -> None:
    if not future.done():  # a client that went away cancelled its future
        future.set_exception(error) if error is not None else future.set_result(result)


class DynamicBatcher:
    """Gathers the texts of concurrent requests into batches for `run` (texts → one result each), called in the
    `executor`'s one worker thread (shared with the unbatched endpoints). A batch starts with the oldest waiting
    request; it waits until `max_batch_size` texts are waiting or the oldest has waited `max_wait` seconds, then
    takes the waiting requests in arrival order while they fit (a larger request runs alone)."""

    def __init__(self, run: Callable[[list[Any]], list[Any]], max_batch_size: int, max_wait: float,
                 executor: ThreadPoolExecutor) -> None:
        self.run, self.max_batch_size, self.max_wait, self.executor = run, max_batch_size, max_wait, executor
        self.counters = BatchCounters()
        self._pending: deque[tuple[list[Any], asyncio.Future, float]] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, items: list[Any]) -> list[Any]:
        if self._arrived is None:
            raise RuntimeError("the batcher is not started (the server's lifespan starts it)")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((items, future, loop.time()))
        self._arrived.set()
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._pending[0][2] + self.max_wait
            while sum(len(items) for items, _, _ in self._pending) < self.max_batch_size and loop.time() < deadline:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
                except asyncio.TimeoutError:  # noqa: UP041 - Python 3.10 has its own
                    break
            batch = [self._pending.popleft()]
            size = len(batch[0][0])
            while self._pending and size + len(self._pending[0][0]) <= self.max_batch_size:
                batch.append(self._pending.popleft())
                size += len(batch[-1][0])
            await self._run([(items, future) for items, future, _ in batch], loop)

    async def _run(self, batch: list[tuple[list[Any], asyncio.Future]], loop: asyncio.AbstractEventLoop) -> None:
        texts = [text for items, _ in batch for text in items]
        counters = self.counters
        counters.requests, counters.texts, counters.batches = (counters.requests + len(batch),
                                                               counters.texts + len(texts), counters.batches + 1)
        counters.largest_batch = max(counters.largest_batch, len(texts))
        try:
            results = await loop.run_in_executor(self.executor, self.run, texts)
        except Exception as error:  # noqa: BLE001 - handed to every request of the batch (a 500 each)
            counters.failed_batches += 1
            for _, future in batch:
                _settle(future, error=error)
            return
        start = 0
        for items, future in batch:
            _settle(future, results[start: start + len(items)])
            start += len(items)


class ContinuousBatcher:
    """Continuous batching for a `Translator` (or ensemble): one worker thread runs a `ContinuousBeamSearch`;
    between two steps it admits the waiting requests (see `_admit`), and answers a request once all its
    sentences have ended. An idle worker waits `max_wait` seconds after a first request for others."""

    def __init__(self, translator: Any, max_batch_size: int, max_wait: float) -> None:  # noqa: ANN401
        self.translator, self.max_batch_size, self.max_wait = translator, max_batch_size, max_wait
        self.counters = BatchCounters()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="seq2text-model", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def submit(self, items: list[str]) -> list[str]:
        if self._loop is None:
            raise RuntimeError("the batcher is not started (the server's lifespan starts it)")
        future = self._loop.create_future()
        self._queue.put((items, future))
        return await future

    # ------------------------------------------------------------------------------ the worker thread
    def _work(self) -> None:
        search, held, requests = self.translator.continuous_search(), deque(), {}
        while not self._stop.is_set():
            self._gather(held, idle=len(search) == 0)
            try:
                self._admit(search, held, requests)
                if len(search):
                    self.counters.steps += 1
                    self.counters.step_sentences += len(search)
                    for (number, index), hyps in search.step():
                        self._ended(requests, number, index, hyps[0])
            except Exception as error:  # noqa: BLE001 - handed to every request in the search (a 500 each)
                log.exception("decoding failed")
                self.counters.failed_batches += 1
                for request in requests.values():
                    self._answer(request["future"], error=error)
                search, requests = self.translator.continuous_search(), {}

    def _gather(self, held: deque, idle: bool) -> None:
        """Moves queued requests to `held`; an idle worker blocks for the first, then waits `max_wait`."""
        if idle and not held:
            first = self._receive(0.1)
            if first is None:
                return
            held.append(first)
            deadline = time.monotonic() + self.max_wait
            while sum(len(items) for items, _ in held) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (request := self._receive(remaining)) is None:
                    break
                held.append(request)
        while (request := self._receive(0)) is not None:
            held.append(request)

    def _receive(self, timeout: float) -> tuple[list[str], Any] | None:
        """The next queued request (texts, future), waiting up to `timeout` seconds (0: not at all), or None."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _admit(self, search: Any, held: deque, requests: dict) -> None:  # noqa: ANN401
        """Starts the held requests that fit beside the sentences decoding (the first always, when idle). A busy
        search takes newcomers once a third of its places are free, not one by one: each admission encodes
        the newcomers and copies the search's state, so admitting at every step costs more than the fuller batch
        gains."""
        texts, keys, room = [], [], self.max_batch_size - len(search)
        if len(search) and room < max(1, self.max_batch_size // 3):
            return
        while held and (len(held[0][0]) <= room - len(texts) or (not len(search) and not texts)):
            items, future = held.popleft()
            if self._cancelled(future):  # the client went away
                continue
            number = self.counters.requests
            self.counters.requests += 1
            self.counters.texts += len(items)
            live = [i for i, text in enumerate(items) if text.strip()]
            requests[number] = {"future": future, "hyps": [None] * len(items), "left": len(live)}
            texts += [items[i] for i in live]
            keys += [(number, i) for i in live]
            if not live:
                self._ended(requests, number, None, None)
        if texts:
            src, lengths = pad_ids(self.translator.source_ids(texts))
            search.add(src, lengths, keys)
            self.counters.batches += 1
            self.counters.largest_batch = max(self.counters.largest_batch, len(search))

    def _ended(self, requests: dict, number: int, index: int | None, hyp: Any) -> None:  # noqa: ANN401
        request = requests[number]
        if index is not None:
            request["hyps"][index] = hyp
            request["left"] -= 1
        if request["left"] == 0:
            del requests[number]
            found = [h for h in request["hyps"] if h is not None]
            texts = iter(self.translator.detokenize(found) if found else [])
            self._answer(request["future"], [next(texts) if h is not None else "" for h in request["hyps"]])

    def _cancelled(self, future: asyncio.Future) -> bool:
        return future.done()

    def _answer(self, future: asyncio.Future, result: list | None = None, error: Exception | None = None) -> None:
        self._loop.call_soon_threadsafe(_settle, future, result, error)


# ---------------------------------------------------------------------------------------------- model processes
class ProcessBatcher:
    """Continuous batching in `workers` model processes behind the server's one HTTP process: each loads the
    bundles `models` and runs a `ContinuousBatcher` with `threads` torch threads; a request goes to the process
    with the fewest sentences in flight. On a CPU this keeps every core busy, where one process leaves a core
    idle while its search runs the serial parts of a step. The processes ignore SIGINT and SIGTERM: the server
    stops them once it has answered the requests in flight. `start_timeout`: seconds a process may take to load."""

    def __init__(self, models: Sequence[str], max_batch_size: int, max_wait: float, workers: int, threads: int,
                 start_timeout: float = 300.0) -> None:
        self.models, self.max_batch_size, self.max_wait = [str(m) for m in models], max_batch_size, max_wait
        self.workers, self.threads, self.start_timeout = workers, threads, start_timeout
        self._front = BatchCounters()  # requests and texts; the processes report the rest
        self._processes: list[_ModelProcess] = []
        self._numbers = count()

    @property
    def counters(self) -> BatchCounters:
        """The front's requests and texts, with the processes' batches and steps summed."""
        parts = [p.report for p in self._processes]  # each process's own BatchCounters
        sums = {k: sum(getattr(r, k) for r in parts) for k in ("batches", "failed_batches", "steps", "step_sentences")}
        return BatchCounters(self._front.requests, self._front.texts, largest_batch=max(
            (r.largest_batch for r in parts), default=0), **sums)

    def describe(self) -> dict:
        """Each process's pid, whether it is alive, and the texts sent to it (for /info)."""
        return {"count": len(self._processes), "pids": [p.process.pid for p in self._processes],
                "alive": [p.alive for p in self._processes], "texts": [p.texts for p in self._processes]}

    def start(self) -> None:
        """Starts the processes and waits until each has loaded the bundles (so the server answers only then)."""
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or OpenMP state forked
        self._processes = [_ModelProcess(context, number, self.models, self.max_batch_size, self.max_wait,
                                         self.threads, loop) for number in range(self.workers)]
        # they ignore SIGTERM, which multiprocessing sends its daemons at exit: killed instead if the server exits
        # without stopping them (a failed start, Ctrl-C while loading, a port in use)
        atexit.register(self._kill)
        try:
            for process in self._processes:
                process.wait_ready(self.start_timeout)
        except BaseException:
            self._kill()
            raise

    def _kill(self) -> None:
        for process in self._processes:
            if process.process.is_alive():
                process.process.kill()

    async def stop(self) -> None:
        await asyncio.to_thread(lambda: [p.stop() for p in self._processes])
        atexit.unregister(self._kill)

    async def submit(self, items: list[str]) -> list[str]:
        """Sends one request's texts to the least busy process and waits for their translations."""
        alive = [p for p in self._processes if p.alive]
        if not alive:
            raise RuntimeError("every model process has exited (see the server's log); restart the server")
        process = min(alive, key=lambda p: p.sentences)
        self._front.requests += 1
        self._front.texts += len(items)
        return await process.submit(next(self._numbers), items)


class _ModelProcess:
    """One model process and the front's side of it: a pipe each way, a thread reading the answers, and the
    requests in flight (number → future, texts)."""

    def __init__(self, context: Any, number: int, models: list[str], max_batch_size: int, max_wait: float,  # noqa: ANN401
                 threads: int, loop: asyncio.AbstractEventLoop) -> None:
        child_requests, requests = context.Pipe(duplex=False)  # (receiving end, sending end)
        answers, child_answers = context.Pipe(duplex=False)
        self.process = context.Process(target=_model_main, name=f"seq2text-model-{number}", daemon=True,
                                       args=(models, max_batch_size, max_wait, threads, child_requests, child_answers))
        self.process.start()
        child_requests.close()  # the child's ends: closed here so that a child's exit reads as end of file
        child_answers.close()
        self._requests, self._answers, self._loop = requests, answers, loop
        self._in_flight: dict[int, tuple[asyncio.Future, int]] = {}
        self.texts, self.alive, self._stopping = 0, True, False
        self.report = BatchCounters()  # the process's counters, as its last answer carried them
        self._reader: threading.Thread | None = None

    @property
    def sentences(self) -> int:
        """Sentences sent here and not answered yet."""
        return sum(size for _, size in self._in_flight.values())

    def wait_ready(self, timeout: float) -> None:
        if not self._answers.poll(timeout):
            self.process.kill()
            raise RuntimeError(f"model process {self.process.name} did not load the model within {timeout:.0f} s")
        try:
            kind, detail = self._answers.recv()
        except EOFError:
            self.process.join(5)
            kind, detail = "failed", f"it exited with code {self.process.exitcode} (see the log above)"
        if kind != "ready":
            raise RuntimeError(f"model process {self.process.name} could not start: {detail}")
        self._reader = threading.Thread(target=self._read, name=f"{self.process.name}-answers", daemon=True)
        self._reader.start()

    async def submit(self, number: int, items: list[str]) -> list[str]:
        future = self._loop.create_future()
        self._in_flight[number] = (future, len(items))
        self.texts += len(items)
        self._requests.send((number, items))
        return await future

    def _read(self) -> None:
        while True:
            try:
                message = self._answers.recv()
            except (EOFError, OSError):
                self._loop.call_soon_threadsafe(self._exited)
                return
            self._loop.call_soon_threadsafe(self._settle, message)

    def _settle(self, message: tuple) -> None:
        number, result, error, self.report = message
        _settle(self._in_flight.pop(number)[0], result, None if error is None else RuntimeError(error))

    def _exited(self) -> None:
        self.alive = False
        if self._stopping:
            return
        log.error("model process %s exited with code %s; %d requests failed", self.process.name,
                  self.process.exitcode, len(self._in_flight))
        for future, _ in self._in_flight.values():
            _settle(future, error=RuntimeError(f"model process {self.process.name} exited"))
        self._in_flight.clear()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        with suppress(OSError):  # it may have exited already
            self._requests.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _PipeBatcher(ContinuousBatcher):
    """A model process's `ContinuousBatcher`, run in the process's main thread: requests (number, texts) come
    from the front's pipe, answers go back on the other as (number, translations, error, the counters); None or
    the pipe's end stops it (the front sends None once it has no request in flight here)."""

    def __init__(self, translator: Any, max_batch_size: int, max_wait: float, requests: Any,  # noqa: ANN401
                 answers: Any) -> None:  # noqa: ANN401
        super().__init__(translator, max_batch_size, max_wait)
        self._requests, self._answers = requests, answers

    def _receive(self, timeout: float) -> tuple[list[str], int] | None:
        if self._stop.is_set() or not self._requests.poll(timeout):
            return None
        try:
            message = self._requests.recv()
        except EOFError:  # the front has gone
            message = None
        if message is None:
            self._stop.set()
            return None
        return message[1], message[0]  # (texts, request number)

    def _cancelled(self, future: Any) -> bool:  # noqa: ANN401 - a request number: the front drops late answers
        return False

    def _answer(self, future: Any, result: list | None = None, error: Exception | None = None) -> None:  # noqa: ANN401
        self._answers.send((future, result, None if error is None else f"{type(error).__name__}: {error}",
                            self.counters))


def _model_main(models: list[str], max_batch_size: int, max_wait: float, threads: int, requests: Any,  # noqa: ANN401
                answers: Any) -> None:  # noqa: ANN401
    """A model process: loads the bundles, then decodes what the front sends until it sends None or exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the front decides when to stop (after its requests in flight)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(threads)
    from seq2text.predict.loading import load

    try:
        translator = load(models[0] if len(models) == 1 else models)
    except Exception as error:  # noqa: BLE001 - said to the front, which refuses to start
        answers.send(("failed", f"{type(error).__name__}: {error}"))
        return
    batcher = _PipeBatcher(translator, max_batch_size, max_wait, requests, answers)
    answers.send(("ready", os.getpid()))
    batcher._work()  # until the front stops it
