"""Batching for `seq2text serve` (nothing of the HTTP side): `DynamicBatcher` per group of requests (every task),
`ContinuousBatcher` (translations join and leave a running beam search between steps), `ProcessBatcher` (a
`ContinuousBatcher` in each of several model processes, `--workers`).

Each is supervised: a model thread, loop or process that dies is started again after a `Backoff`, and the requests
it held are decoded again (by a live process or the new one), so a request fails only when decoding it stopped the
model `MAX_TRIES` times. A request whose future is cancelled (its client went away, or it ran past `--timeout`)
leaves the queue and the running search instead of being decoded for nobody."""

from __future__ import annotations

import asyncio
import atexit
import bisect
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, fields
from itertools import count
from typing import Any

import torch

from seq2text.hardware import worker_context
from seq2text.text.reading import pad_ids

__all__ = ["STEP_BUCKETS", "Backoff", "BatchCounters", "ContinuousBatcher", "DynamicBatcher", "ProcessBatcher"]

log = logging.getLogger(__name__)

MAX_TRIES = 3  # a request whose decoding stopped the model this many times gets an error instead of another try
STEP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)  # upper bounds of the sentences-per-step histogram (then: more)


@dataclass
class BatchCounters:
    """What the batcher did so far (shown by /info and /metrics)."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    steps: int = 0  # continuous batching: decoding steps, and sentences summed over them
    step_sentences: int = 0
    cancelled: int = 0  # requests dropped undecoded: their client went away or they ran past --timeout
    restarts: int = 0  # model threads, loops or processes started again after dying
    step_sizes: list[int] = field(default_factory=lambda: [0] * (len(STEP_BUCKETS) + 1))  # steps per bucket

    def count_step(self, sentences: int) -> None:
        self.steps += 1
        self.step_sentences += sentences
        self.step_sizes[bisect.bisect_left(STEP_BUCKETS, sentences)] += 1

    def add(self, other: BatchCounters) -> None:
        """Adds `other`'s counts to these (the largest batch: the larger)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "largest_batch":
                setattr(self, f.name, max(mine, theirs))
            elif isinstance(mine, list):
                setattr(self, f.name, [a + b for a, b in zip(mine, theirs, strict=True)])
            else:
                setattr(self, f.name, mine + theirs)


class Backoff:
    """Seconds to wait before starting a dead model again, from the count of failures alone (no clock): none after
    a model that had answered a request, then 0.5 s doubling up to `cap` while restarted models die unanswered."""

    def __init__(self, cap: float = 10.0) -> None:
        self.cap, self.failures = cap, 0

    def next(self) -> float:
        delay = 0.0 if self.failures == 0 else min(self.cap, 0.5 * 2 ** (self.failures - 1))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def _settle(future: asyncio.Future, result: object = None, error: BaseException | None = None) -> None:
    if not future.done():  # a client that went away cancelled its future
        future.set_exception(error) if error is not None else future.set_result(result)


def _tried_out() -> RuntimeError:
    return RuntimeError(f"decoding this request stopped the model {MAX_TRIES} times; it is not tried again")


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
        self._backoff, self._stopping, self._running = Backoff(), False, 0

    @property
    def ready(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Texts of the batch being decoded."""
        return self._running

    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._spawn()

    def _spawn(self) -> None:
        if not self._stopping:
            self._task = asyncio.get_running_loop().create_task(self._loop())
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        """Starts the batching loop again when it died (its requests stay queued)."""
        if self._stopping or task.cancelled():
            return
        log.error("the batching loop died (%r); starting it again", task.exception())
        self.counters.restarts += 1
        asyncio.get_running_loop().call_later(self._backoff.next(), self._spawn)

    async def stop(self) -> None:
        self._stopping = True
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
            try:
                await self._run([(items, future) for items, future, _ in batch if not future.done()], loop)
            except BaseException:  # the loop is dying: its batch waits for the next one
                self._pending.extendleft(reversed([entry for entry in batch if not entry[1].done()]))
                raise
            self.counters.cancelled += sum(future.cancelled() for _, future, _ in batch)

    async def _run(self, batch: list[tuple[list[Any], asyncio.Future]], loop: asyncio.AbstractEventLoop) -> None:
        if not batch:
            return
        texts = [text for items, _ in batch for text in items]
        counters = self.counters
        counters.requests, counters.texts, counters.batches = (counters.requests + len(batch),
                                                               counters.texts + len(texts), counters.batches + 1)
        counters.largest_batch = max(counters.largest_batch, len(texts))
        self._running = len(texts)
        try:
            results = await loop.run_in_executor(self.executor, self.run, texts)
        except Exception as error:  # noqa: BLE001 - handed to every request of the batch (a 500 each)
            counters.failed_batches += 1
            for _, future in batch:
                _settle(future, error=error)
            return
        finally:
            self._running = 0
        self._backoff.reset()
        start = 0
        for items, future in batch:
            _settle(future, results[start: start + len(items)])
            start += len(items)


@dataclass
class _Request:
    """A request in a `ContinuousBatcher`: its texts, its future (in a model process: the front's request number),
    the number given at admission, the times decoding it stopped the model, and its hypotheses so far."""

    items: list[str]
    future: Any
    number: int | None = None
    tries: int = 0
    hyps: list = field(default_factory=list)
    left: int = 0


class ContinuousBatcher:
    """Continuous batching for a `Translator` (or ensemble): one model thread runs a `ContinuousBeamSearch`;
    between two steps it admits the waiting requests (see `_admit`), drops those cancelled, and answers a request
    once all its sentences have ended. An idle thread waits `max_wait` seconds after a first request for others.
    A model thread that dies is started again after a `Backoff`; the requests it was decoding start again."""

    def __init__(self, translator: Any, max_batch_size: int, max_wait: float) -> None:  # noqa: ANN401
        self.translator, self.max_batch_size, self.max_wait = translator, max_batch_size, max_wait
        self.counters = BatchCounters()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held: deque[_Request] = deque()  # waiting to join the search
        self._requests: dict[int, _Request] = {}  # in the search, by number
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backoff = Backoff()

    @property
    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def queued(self) -> int:
        return self._queue.qsize() + len(self._held)

    @property
    def in_flight(self) -> int:
        """Sentences of the requests in the search."""
        return sum(len(request.items) for request in list(self._requests.values()))

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._spawn()

    def _spawn(self) -> None:
        if not self._stop.is_set():
            self._thread = threading.Thread(target=self._guarded, name="seq2text-model", daemon=True)
            self._thread.start()

    def _guarded(self) -> None:
        try:
            self._work()
        except BaseException as error:  # noqa: BLE001 - the thread is dying: the loop starts another
            log.error("the model thread died (%s: %s); starting it again", type(error).__name__, error)
            self._loop.call_soon_threadsafe(self._restart)

    def _restart(self) -> None:
        self.counters.restarts += 1
        self._loop.call_later(self._backoff.next(), self._spawn)

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

    # ------------------------------------------------------------------------------ the model thread
    def _work(self) -> None:
        search = self.translator.continuous_search()
        self._requeue()
        while not self._stop.is_set():
            self._gather(idle=len(search) == 0)
            try:
                self._drop_cancelled(search)
                self._admit(search)
                if len(search):
                    self.counters.count_step(len(search))
                    for (number, index), hyps in search.step():
                        self._ended(number, index, hyps[0])
            except Exception as error:  # noqa: BLE001 - handed to every request in the search (a 500 each)
                log.exception("decoding failed")
                self.counters.failed_batches += 1
                for request in self._requests.values():
                    self._answer(request.future, error=error)
                search, self._requests = self.translator.continuous_search(), {}

    def _requeue(self) -> None:
        """Puts the requests a dead thread was decoding back at the head of the queue (tried out: an error)."""
        for request in reversed(list(self._requests.values())):
            request.tries += 1
            if request.tries >= MAX_TRIES:
                self._answer(request.future, error=_tried_out())
            else:
                self._held.appendleft(request)
        self._requests.clear()

    def _gather(self, idle: bool) -> None:
        """Moves queued requests to `_held`; an idle thread blocks for the first, then waits `max_wait`."""
        held = self._held
        if idle and not held:
            first = self._receive(0.1)
            if first is None:
                return
            held.append(_Request(*first))
            deadline = time.monotonic() + self.max_wait
            while sum(len(r.items) for r in held) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (request := self._receive(remaining)) is None:
                    break
                held.append(_Request(*request))
        while (request := self._receive(0)) is not None:
            held.append(_Request(*request))

    def _receive(self, timeout: float) -> tuple[list[str], Any] | None:
        """The next queued request (texts, future), waiting up to `timeout` seconds (0: not at all), or None."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _drop_cancelled(self, search: Any) -> None:  # noqa: ANN401
        """Takes the requests whose client went away out of the running search."""
        gone = {number for number, request in self._requests.items() if self._cancelled(request.future)}
        if gone:
            search.remove(lambda key: key[0] in gone)
            for number in gone:
                self._forget(self._requests.pop(number).future)
            self.counters.cancelled += len(gone)

    def _admit(self, search: Any) -> None:  # noqa: ANN401
        """Starts the held requests that fit beside the sentences decoding (the first always, when idle). A busy
        search takes newcomers once a third of its places are free, not one by one: each admission encodes
        the newcomers and copies the search's state, so admitting at every step costs more than the fuller batch
        gains."""
        texts, keys, room, held = [], [], self.max_batch_size - len(search), self._held
        if len(search) and room < max(1, self.max_batch_size // 3):
            return
        while held and (len(held[0].items) <= room - len(texts) or (not len(search) and not texts)):
            request = held.popleft()
            if self._cancelled(request.future):  # the client went away
                self.counters.cancelled += 1
                self._forget(request.future)
                continue
            if request.number is None:  # not a request started again after a crash
                request.number = self.counters.requests
                self.counters.requests += 1
                self.counters.texts += len(request.items)
            live = [i for i, text in enumerate(request.items) if text.strip()]
            request.hyps, request.left = [None] * len(request.items), len(live)
            self._requests[request.number] = request
            texts += [request.items[i] for i in live]
            keys += [(request.number, i) for i in live]
            if not live:
                self._ended(request.number, None, None)
        if texts:
            src, lengths = pad_ids(self.translator.source_ids(texts))
            search.add(src, lengths, keys)
            self.counters.batches += 1
            self.counters.largest_batch = max(self.counters.largest_batch, len(search))

    def _ended(self, number: int, index: int | None, hyp: Any) -> None:  # noqa: ANN401
        request = self._requests[number]
        if index is not None:
            request.hyps[index] = hyp
            request.left -= 1
        if request.left == 0:
            del self._requests[number]
            found = [h for h in request.hyps if h is not None]
            texts = iter(self.translator.detokenize(found) if found else [])
            self._answer(request.future, [next(texts) if h is not None else "" for h in request.hyps])
            self._backoff.reset()

    def _cancelled(self, future: asyncio.Future) -> bool:
        return future.done()

    def _forget(self, future: Any) -> None:  # noqa: ANN401 - a model process's hook
        pass

    def _answer(self, future: asyncio.Future, result: list | None = None, error: Exception | None = None) -> None:
        self._loop.call_soon_threadsafe(_settle, future, result, error)


# ---------------------------------------------------------------------------------------------- model processes
@dataclass
class _Job:
    """A request of the front's: its number, texts and future, the times a process holding it died, and the
    process holding it (None: waiting for one)."""

    number: int
    items: list[str]
    future: asyncio.Future
    tries: int = 0
    process: _ModelProcess | None = None


class ProcessBatcher:
    """Continuous batching in `workers` model processes behind the server's one HTTP process: each loads the
    bundles `models` and runs a `ContinuousBatcher` with `threads` torch threads; a request goes to the process
    with the fewest sentences in flight. On a CPU this keeps every core busy, where one process leaves a core
    idle while its search runs the serial parts of a step.

    A process that dies is started again (its bundles loaded afresh) after its slot's `Backoff`; the requests it
    held go to a live process, or wait for the new one. The processes ignore SIGINT and SIGTERM: the server stops
    them once it has answered the requests in flight. `start_timeout`: seconds a process may take to load."""

    def __init__(self, models: Sequence[str], max_batch_size: int, max_wait: float, workers: int, threads: int,
                 start_timeout: float = 300.0) -> None:
        self.models, self.max_batch_size, self.max_wait = [str(m) for m in models], max_batch_size, max_wait
        self.workers, self.threads, self.start_timeout = workers, threads, start_timeout
        self._front = BatchCounters()  # requests, texts and cancellations; the processes report the rest
        self._past = BatchCounters()  # the counts of processes that died
        self._processes: list[_ModelProcess] = []
        self._backoffs = [Backoff() for _ in range(workers)]
        self.restarts = [0] * workers
        self.restart_seconds: list[list[float]] = [[] for _ in range(workers)]  # from each death to loaded again
        self._died: list[float] = [0.0] * workers
        self._waiting: deque[_Job] = deque()
        self._numbers = count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context = worker_context(["seq2text.serving.batching", "seq2text.predict.loading"])
        self._stopping = False
        self._restarting: set[asyncio.Task] = set()

    @property
    def counters(self) -> BatchCounters:
        """The front's requests, texts and cancellations, with the processes' batches and steps summed."""
        total = BatchCounters()
        for report in (self._past, *(p.report for p in self._processes)):
            total.add(report)
        front = self._front
        total.requests, total.texts, total.cancelled = front.requests, front.texts, front.cancelled
        total.restarts = sum(self.restarts)
        return total

    @property
    def ready(self) -> bool:
        """Whether a model process can take work now."""
        return any(p.alive for p in self._processes)

    @property
    def queued(self) -> int:
        """Requests waiting for a model process (none alive)."""
        return len(self._waiting)

    def describe(self) -> dict:
        """Each process's pid, whether it is alive, the texts sent to it, its sentences in flight and restarts."""
        processes = self._processes
        return {"count": len(processes), "pids": [p.process.pid for p in processes],
                "alive": [p.alive for p in processes], "texts": [p.texts for p in processes],
                "in_flight": [p.sentences for p in processes], "restarts": list(self.restarts),
                "restart_seconds": [list(seconds) for seconds in self.restart_seconds]}

    def start(self) -> None:
        """Starts the processes and waits until each has loaded the bundles (so the server answers only then)."""
        self._loop = asyncio.get_running_loop()
        self._processes = [self._process(slot) for slot in range(self.workers)]
        # they ignore SIGTERM, which multiprocessing sends its daemons at exit: killed instead if the server exits
        # without stopping them (a failed start, Ctrl-C while loading, a port in use)
        atexit.register(self._kill)
        try:
            for process in self._processes:
                process.wait_ready(self.start_timeout)
        except BaseException:
            self._kill()
            raise

    def _process(self, slot: int) -> _ModelProcess:
        return _ModelProcess(self._context, slot, self.models, self.max_batch_size, self.max_wait, self.threads,
                             self._loop, self._lost)

    def _kill(self) -> None:
        for process in self._processes:
            if process.process.is_alive():
                process.process.kill()

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._restarting):
            task.cancel()
        await asyncio.gather(*self._restarting, return_exceptions=True)
        while self._waiting:
            _settle(self._waiting.popleft().future, error=RuntimeError("the server is stopping"))
        await asyncio.to_thread(lambda: [p.stop() for p in self._processes])
        atexit.unregister(self._kill)

    async def submit(self, items: list[str]) -> list[str]:
        """Sends one request's texts to the least busy process and waits for their translations."""
        if self._loop is None:
            raise RuntimeError("the batcher is not started (the server's lifespan starts it)")
        job = _Job(next(self._numbers), items, self._loop.create_future())
        self._front.requests += 1
        self._front.texts += len(items)
        self._dispatch(job)
        try:
            return await job.future
        except asyncio.CancelledError:  # the client went away or ran past --timeout
            self._front.cancelled += 1
            if job.process is not None:
                job.process.withdraw(job.number)
            elif job in self._waiting:
                self._waiting.remove(job)
            raise

    def _dispatch(self, job: _Job) -> None:
        alive = [p for p in self._processes if p.alive]
        job.process = min(alive, key=lambda p: p.sentences) if alive else None
        if job.process is None:
            self._waiting.append(job)
        else:
            job.process.send(job)

    def _lost(self, process: _ModelProcess) -> None:
        """A process died: its requests go elsewhere (or wait), and it is started again after its back-off."""
        if process not in self._processes:  # a new one that died before taking its slot: `_restart` sees it
            return
        slot, jobs = self._processes.index(process), process.take()
        self._died[slot] = time.monotonic()  # reported in /info, never used to decide
        code = process.process.exitcode  # None where the fork server has not told it yet
        log.error("model process %s (pid %s) exited%s; its %d requests are decoded again", process.process.name,
                  process.process.pid, "" if code is None else f" with code {code}", len(jobs))
        for job in jobs:
            job.tries += 1
            if job.tries >= MAX_TRIES:
                _settle(job.future, error=_tried_out())
            elif not job.future.done():
                self._dispatch(job)
        if process.answered:
            self._backoffs[slot].reset()
        self._loop.call_later(self._backoffs[slot].next(), self._restart_later, slot)

    def _restart_later(self, slot: int) -> None:
        if not self._stopping:
            task = self._loop.create_task(self._restart(slot))
            self._restarting.add(task)
            task.add_done_callback(self._restarting.discard)

    async def _restart(self, slot: int) -> None:
        old = self._processes[slot]
        try:
            new = await asyncio.to_thread(self._started, slot)
        except Exception as error:  # noqa: BLE001 - logged; tried again after the back-off
            log.error("model process %d could not start again (%s); trying again", slot, error)
            self._loop.call_later(self._backoffs[slot].next(), self._restart_later, slot)
            return
        if self._stopping or not new.alive:  # stopping, or it died already (then it is started again)
            await asyncio.to_thread(new.stop)
            if not self._stopping:
                self._loop.call_later(self._backoffs[slot].next(), self._restart_later, slot)
            return
        new.texts = old.texts
        self._past.add(old.report)
        self._processes[slot] = new
        self.restarts[slot] += 1
        self.restart_seconds[slot].append(round(time.monotonic() - self._died[slot], 2))
        log.warning("model process %s started again (pid %s) %.1f s after it died", new.process.name,
                    new.process.pid, self.restart_seconds[slot][-1])
        while self._waiting:
            self._dispatch(self._waiting.popleft())

    def _started(self, slot: int) -> _ModelProcess:
        process = self._process(slot)
        try:
            process.wait_ready(self.start_timeout)
        except BaseException:
            process.process.kill()
            raise
        return process


class _ModelProcess:
    """One model process and the front's side of it: a pipe each way, a thread reading the answers, and the
    requests in flight (number → `_Job`). `lost(self)` is called in the event loop when the process dies."""

    def __init__(self, context: Any, number: int, models: list[str], max_batch_size: int, max_wait: float,  # noqa: ANN401
                 threads: int, loop: asyncio.AbstractEventLoop, lost: Callable[[_ModelProcess], None]) -> None:
        child_requests, requests = context.Pipe(duplex=False)  # (receiving end, sending end)
        answers, child_answers = context.Pipe(duplex=False)
        self.process = context.Process(target=_model_main, name=f"seq2text-model-{number}", daemon=True,
                                       args=(models, max_batch_size, max_wait, threads, child_requests, child_answers))
        self.process.start()
        child_requests.close()  # the child's ends: closed here so that a child's exit reads as end of file
        child_answers.close()
        self._requests, self._answers, self._loop, self._lost = requests, answers, loop, lost
        self._in_flight: dict[int, _Job] = {}
        self.texts, self.answered, self.alive, self._stopping = 0, 0, False, False
        self.report = BatchCounters()  # the process's counters, as its last answer carried them

    @property
    def sentences(self) -> int:
        """Sentences sent here and not answered yet."""
        return sum(len(job.items) for job in self._in_flight.values())

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
        self.alive = True
        threading.Thread(target=self._read, name=f"{self.process.name}-answers", daemon=True).start()

    def send(self, job: _Job) -> None:
        self._in_flight[job.number] = job
        self.texts += len(job.items)
        with suppress(OSError):  # the process died: its reader calls `lost`, which sends the job elsewhere
            self._requests.send(("translate", job.number, job.items))

    def withdraw(self, number: int) -> None:
        """Forgets a request whose client went away and tells the process to drop it."""
        if self._in_flight.pop(number, None) is not None:
            with suppress(OSError):
                self._requests.send(("cancel", number))

    def take(self) -> list[_Job]:
        """The requests in flight, no longer held here."""
        jobs = list(self._in_flight.values())
        self._in_flight.clear()
        return jobs

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
        job = self._in_flight.pop(number, None)  # None: withdrawn
        if job is not None:
            self.answered += 1
            _settle(job.future, result, None if error is None else RuntimeError(error))

    def _exited(self) -> None:
        self.alive = False
        if not self._stopping:
            self._lost(self)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        with suppress(OSError):  # it may have exited already
            self._requests.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _PipeBatcher(ContinuousBatcher):
    """A model process's `ContinuousBatcher`, run in the process's main thread: messages come from the front's
    pipe — ("translate", number, texts), ("cancel", number), or None to stop (sent once the front has no request
    in flight here; the pipe's end stops it too) — and answers go back on the other as (number, translations,
    error, the counters)."""

    def __init__(self, translator: Any, max_batch_size: int, max_wait: float, requests: Any,  # noqa: ANN401
                 answers: Any) -> None:  # noqa: ANN401
        super().__init__(translator, max_batch_size, max_wait)
        self._pipe, self._answers, self._cancels = requests, answers, set()

    def _receive(self, timeout: float) -> tuple[list[str], int] | None:
        while not self._stop.is_set() and self._pipe.poll(timeout):
            try:
                message = self._pipe.recv()
            except EOFError:  # the front has gone
                message = None
            if message is None:
                self._stop.set()
            elif message[0] == "cancel":
                self._cancels.add(message[1])
                timeout = 0
            else:
                return message[2], message[1]  # (texts, request number)
        return None

    def _cancelled(self, future: Any) -> bool:  # noqa: ANN401 - the front's request number
        return future in self._cancels

    def _forget(self, future: Any) -> None:  # noqa: ANN401
        self._cancels.discard(future)

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
