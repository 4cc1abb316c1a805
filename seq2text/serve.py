"""`seq2text serve`: HTTP/JSON endpoints for bundles, on FastAPI + uvicorn, with dynamic batching.

    POST /translate  {"texts": ["ein Satz", ...]}     → {"translations": [...]}            (translation)
    POST /classify   {"texts": [...]}                 → {"labels": [...], "probabilities": [...]}
    POST /predict    {"texts": [...]}                 → {"values": [...]}                  (text regression)
    POST /score      {"texts": [...]}                 → {"log_probs": [...]}               (language models)
    POST /generate   {"prompt": "...", "max_tokens": 50, "temperature": 1.0, "top_k": null, "seed": null}
    POST /forecast   {"history": [{"time": ..., "<value column>": ...}, ...], "horizon": null}
    GET  /health, GET /info (task, languages, metrics, sacreBLEU signature, limits, batching counters)

Texts of concurrent requests are decoded together. Translation batches continuously (`--batching continuous`,
the default): sentences join the running beam search between two decoding steps and leave it when they end, so
a client just answered sends its next sentence into the batch being decoded instead of waiting for a whole
batch to finish; at most `max_batch_size` sentences decode together, and an idle server waits `max_wait` for
more before its first step. The other tasks (and `--batching dynamic`) batch per request: a batch starts with the
first waiting request and takes the others that arrive within `max_wait` seconds, up to `max_batch_size` texts
(a request is never split). The model runs in one worker thread, so the event loop keeps accepting requests
while it decodes. `--workers N` starts N such server processes on one port (uvicorn's workers: each accepted
connection belongs to one of them), each with its own copy of the model, batcher and `cores // N` torch threads:
on a CPU a single process leaves a core idle while its search runs the serial parts of a step (Python, small
ops), where one worker per core keeps them all busy. /info and /health describe the worker that answers.
Bad requests get a JSON 4xx (`{"error": ...}`): malformed JSON or fields 422, too many texts or characters
413, an unknown route 404. On SIGINT/SIGTERM uvicorn stops accepting connections and finishes the requests
in flight before the process exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from seq2text.errors import ConfigError, Seq2TextError
from seq2text.hardware import OPENMP_WAIT_POLICY
from seq2text.reading import pad_ids

try:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException
except ImportError as missing:  # an optional extra: the core install stays small
    raise Seq2TextError(f"seq2text serve needs FastAPI and uvicorn ({missing}): "
                        "pip install 'seq2text[serve]'") from None

__all__ = ["ContinuousBatcher", "DynamicBatcher", "ServeConfig", "create_app", "serve", "worker_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """How the server listens, batches and limits requests.

    Attributes:
        host, port: where to listen (127.0.0.1: this machine only).
        max_batch_size: most texts decoded together across requests.
        max_wait: seconds the first request of a batch waits for others to join it.
        max_chars: longest text (characters) a request may hold.
        max_lines: most texts in one request.
        graceful_timeout: seconds that shutdown waits for the requests in flight.
        batching: `continuous` (translation: sentences join and leave the running search between steps) or
            `dynamic` (a batch per group of requests, decoded to its end); the other tasks always batch dynamically.
        threads: torch's intra-op threads for the model in each worker (None: the cores divided among the
            workers; with one worker, torch's default of one per core).
        workers: server processes on the one port, each with its own model and batcher.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    max_wait: float = 0.01
    max_chars: int = 2000
    max_lines: int = 64
    graceful_timeout: float = 30.0
    batching: Literal["continuous", "dynamic"] = "continuous"
    threads: int | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be ≥ 1, got {self.threads}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be ≥ 1, got {self.workers}")
        if self.batching not in ("continuous", "dynamic"):
            raise ConfigError(f"--batching must be continuous or dynamic, got {self.batching!r}")
        if self.max_batch_size < 1 or self.max_chars < 1 or self.max_lines < 1:
            raise ConfigError("--max-batch-size, --max-chars and --max-lines must be positive")
        if not 0 <= self.max_wait <= 10 or not math.isfinite(self.max_wait):
            raise ConfigError(f"--max-wait-ms must lie in [0, 10000], got {self.max_wait * 1000:g}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must lie in [0, 65535], got {self.port}")


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
    sizes: list[int] = field(default_factory=list, repr=False)


class DynamicBatcher:
    """Gathers the texts of concurrent requests into batches for one function run in one worker thread.

    A batch starts with the oldest waiting request; it waits until `max_batch_size` texts are waiting or the
    oldest has waited `max_wait` seconds (so requests that queued while the model was busy leave at once), then
    takes the waiting requests in arrival order while they fit.

    Args:
        run: texts → one result per text, in order (called in the worker thread, one batch at a time).
        max_batch_size: most texts per batch (a larger request runs alone).
        max_wait: seconds a batch's first request waits for others.
        executor: the worker thread (shared with the unbatched endpoints, so the model runs one call at a time).
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]], max_batch_size: int, max_wait: float,
                 executor: ThreadPoolExecutor) -> None:
        self.run, self.max_batch_size, self.max_wait, self.executor = run, max_batch_size, max_wait, executor
        self.counters = BatchCounters()
        self._pending: deque[tuple[list[Any], asyncio.Future, float]] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Starts the batching loop on the running event loop."""
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stops the loop (after the server has finished the requests in flight)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, items: list[Any]) -> list[Any]:
        """Queues one request's texts and waits for their results."""
        if self._arrived is None:
            raise RuntimeError("the batcher is not started (the server's lifespan starts it)")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((items, future, loop.time()))
        self._arrived.set()
        return await future

    def _waiting(self) -> int:
        return sum(len(items) for items, _, _ in self._pending)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._pending[0][2] + self.max_wait
            while self._waiting() < self.max_batch_size and loop.time() < deadline:
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
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for items, future in batch:
            if not future.done():  # a client that went away cancelled its future
                future.set_result(results[start: start + len(items)])
            start += len(items)


class ContinuousBatcher:
    """Continuous batching for translation: one worker thread runs a `ContinuousBeamSearch`; between two steps
    it admits the waiting requests (in arrival order, while at most `max_batch_size` sentences decode, once a
    third of the places are free; a larger request runs alone), and answers a request once all its sentences
    have ended.

    Args:
        translator: a `Translator` (or ensemble): `source_ids`, `continuous_search`, `detokenize`.
        max_batch_size: most sentences decoded together.
        max_wait: seconds an idle worker waits, after a first request, for others to start with it.
    """

    def __init__(self, translator: Any, max_batch_size: int, max_wait: float) -> None:  # noqa: ANN401
        self.translator, self.max_batch_size, self.max_wait = translator, max_batch_size, max_wait
        self.counters = BatchCounters()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Starts the worker thread, answering on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="seq2text-model", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stops the worker (after the server has finished the requests in flight)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def submit(self, items: list[str]) -> list[str]:
        """Queues one request's texts and waits for their translations."""
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
            try:
                held.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                return
            deadline = time.monotonic() + self.max_wait
            while sum(len(items) for items, _ in held) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    held.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        while True:
            try:
                held.append(self._queue.get_nowait())
            except queue.Empty:
                return

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
            if future.done():  # the client went away
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

    def _answer(self, future: asyncio.Future, result: list | None = None, error: Exception | None = None) -> None:
        def settle() -> None:
            if not future.done():  # a client that went away cancelled its future
                future.set_exception(error) if error is not None else future.set_result(result)

        self._loop.call_soon_threadsafe(settle)


class TextsIn(BaseModel):
    """A request of texts (one text: a list of one)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, description="the texts, each a plain string")


class GenerateIn(BaseModel):
    """A language model's sampling request."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = ""
    max_tokens: int = Field(50, ge=1, le=1000)
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    top_k: int | None = Field(None, ge=1)
    seed: int | None = None


class ForecastIn(BaseModel):
    """A forecasting request: the history table as records, columns as in training."""

    model_config = ConfigDict(extra="forbid")
    history: list[dict[str, Any]] = Field(min_length=1)
    horizon: int | None = Field(None, ge=1)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _check_texts(texts: list[str], config: ServeConfig) -> None:
    """413 for a request over the limits."""
    if len(texts) > config.max_lines:
        raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {config.max_lines} (--max-lines)")
    for number, text in enumerate(texts):
        if len(text) > config.max_chars:
            raise HTTPException(413, f"text {number} has {len(text)} characters; the limit is {config.max_chars} "
                                f"(--max-chars)")


def _text_route(predictor: object) -> tuple[str, str, Callable[[list[str]], list[Any]]]:
    """The batched endpoint of a predictor: its path, the response key and texts → results."""
    task = predictor.task
    if task == "translation":
        return "/translate", "translations", lambda texts: predictor.translate(texts, batch_size=len(texts))
    if task == "classification":
        return "/classify", "probabilities", predictor.predict_proba
    if task == "text_regression":
        return "/predict", "values", predictor.predict
    if task == "language_model":
        return "/score", "log_probs", predictor.score
    raise ConfigError(f"a {task} model has no text endpoint")


def _info(predictor: object, models: Sequence[str], config: ServeConfig, counters: BatchCounters | None,
          routes: list[str]) -> dict:
    metrics = getattr(predictor, "metrics", {}) or {}
    if "members" in metrics:  # an ensemble: each member's own
        metrics = {"members": metrics["members"]}
    info = {"task": predictor.task, "models": [str(m) for m in models], "routes": routes,
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float | str | list | dict)},
            "limits": {"max_lines": config.max_lines, "max_chars": config.max_chars},
            "batching": {"mode": config.batching if predictor.task == "translation" else "dynamic",
                         "max_batch_size": config.max_batch_size, "max_wait_ms": config.max_wait * 1000}}
    reading = getattr(predictor, "reading", None)
    if predictor.task == "translation":
        info["languages"] = {"source": reading.src_lang, "target": reading.trg_lang}
        signatures = [m.get("test/bleu_signature") for m in metrics.get("members", [metrics]) if isinstance(m, dict)]
        info["sacrebleu_signature"] = signatures[0] if "members" not in metrics else signatures  # one per member
    info["workers"] = {"count": config.workers, "pid": os.getpid()}  # the worker answering: its own counters
    info["threads"] = {"torch": torch.get_num_threads(),
                       "openmp_wait_policy": os.environ.get(OPENMP_WAIT_POLICY, "unset (OpenMP's default)")}
    if counters is not None:
        shown = {k: v for k, v in asdict(counters).items() if k != "sizes"}
        shown["mean_batch_size"] = round(counters.texts / counters.batches, 2) if counters.batches else 0.0
        if counters.steps:  # continuous batching: sentences decoded together, on average over the steps
            shown["mean_sentences_per_step"] = round(counters.step_sentences / counters.steps, 2)
        info["batching"].update(shown)
    return info


def create_app(predictor: object, config: ServeConfig, models: Sequence[str] = ()) -> FastAPI:
    """The FastAPI application serving `predictor` (any object `seq2text.load` returns)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2text-model")
    batcher = None
    routes = ["/health", "/info"]
    if predictor.task != "forecasting":
        path, key, run = _text_route(predictor)
        if predictor.task == "translation" and config.batching == "continuous":
            batcher = ContinuousBatcher(predictor, config.max_batch_size, config.max_wait)
        else:
            batcher = DynamicBatcher(run, config.max_batch_size, config.max_wait, executor)
        routes.append(path)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202 - FastAPI's lifespan protocol
        if batcher is not None:
            batcher.start()
        yield
        if batcher is not None:
            await batcher.stop()
        executor.shutdown(wait=True)

    app = FastAPI(title="seq2text", lifespan=lifespan)
    _add_error_handlers(app)
    app.get("/health")(lambda: {"status": "ok", "task": predictor.task, "pid": os.getpid()})
    if batcher is not None:
        _add_text_route(app, path, key, batcher, config)
    if predictor.task == "language_model":
        _add_generate(app, predictor, executor)
        routes.append("/generate")
    if predictor.task == "forecasting":
        _add_forecast(app, predictor, executor)
        routes.append("/forecast")
    app.get("/info")(lambda: _info(predictor, models, config, batcher.counters if batcher else None, routes))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "bad request: " + "; ".join(_problem(e) for e in error.errors()[:5]))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(Seq2TextError)
    async def user_error(_: Request, error: Seq2TextError) -> JSONResponse:  # e.g. a forecast history too short
        return _error(422, str(error))


def _problem(error: dict) -> str:
    """One validation error of FastAPI/pydantic, said for a user."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    if error.get("type") == "json_invalid":
        return f"malformed JSON ({error.get('ctx', {}).get('error', 'cannot parse')}); send a JSON object such as " \
               '{"texts": ["..."]} with content-type application/json'
    if not where:
        return 'the body must be a JSON object such as {"texts": ["..."]} (content-type application/json)'
    return f"{where}: {error.get('msg')}"


def _add_text_route(app: FastAPI, path: str, key: str, batcher: DynamicBatcher | ContinuousBatcher,
                    config: ServeConfig) -> None:
    async def handle(request: TextsIn) -> dict:
        _check_texts(request.texts, config)
        results = await batcher.submit(request.texts)
        if key == "probabilities":  # a classifier: the label and its probabilities
            return {"labels": [max(p, key=p.get) for p in results], "probabilities": results}
        return {key: results}

    app.post(path)(handle)


def _add_generate(app: FastAPI, predictor: object, executor: ThreadPoolExecutor) -> None:
    async def generate(request: GenerateIn) -> dict:
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(executor, lambda: predictor.generate(
            request.prompt, request.max_tokens, request.temperature, request.top_k, request.seed))
        return {"text": text}

    app.post("/generate")(generate)


def _add_forecast(app: FastAPI, predictor: object, executor: ThreadPoolExecutor) -> None:
    async def forecast(request: ForecastIn) -> dict:
        import pandas as pd

        loop = asyncio.get_running_loop()
        table = await loop.run_in_executor(executor, lambda: predictor.forecast(pd.DataFrame(request.history),
                                                                                request.horizon))
        return {"forecast": [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]}

    app.post("/forecast")(forecast)


def _plain(value: object) -> object:
    """A JSON-safe cell: timestamps as ISO strings, numpy scalars as Python numbers."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


_WORKER_SETTINGS = "SEQ2TEXT_SERVE_WORKER"  # the models and ServeConfig, as JSON, for each worker process


def serve(models: Sequence[str | Path], config: ServeConfig) -> None:
    """Loads the bundles (several: one ensemble) and serves them until SIGINT/SIGTERM, in `config.workers`
    processes (the bundles are loaded here first either way, so that a bad one fails before any worker starts)."""
    from seq2text.inference import load

    threads = config.threads
    if threads is None and config.workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // config.workers)
    if threads is not None:
        torch.set_num_threads(threads)
    predictor = load(models[0] if len(models) == 1 else list(models))
    names = [str(m) for m in models]
    run = {"host": config.host, "port": config.port, "log_level": "info",
           "timeout_graceful_shutdown": int(config.graceful_timeout)}
    if config.workers == 1:
        uvicorn.run(create_app(predictor, config, names), **run)
        return
    del predictor  # each worker loads its own
    os.environ[_WORKER_SETTINGS] = json.dumps({"models": names, "config": asdict(replace(config, threads=threads))})
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=config.workers, **run)


def worker_app() -> FastAPI:
    """The application of one worker process of `serve` (uvicorn calls this factory in each): the bundles and the
    configuration come from the parent process through the environment."""
    from seq2text.inference import load

    if _WORKER_SETTINGS not in os.environ:
        raise ConfigError(f"worker_app runs in a worker started by seq2text serve --workers (no {_WORKER_SETTINGS})")
    settings = json.loads(os.environ[_WORKER_SETTINGS])
    config = ServeConfig(**settings["config"])
    torch.set_num_threads(config.threads)
    models = settings["models"]
    return create_app(load(models[0] if len(models) == 1 else models), config, models)
