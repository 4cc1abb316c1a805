"""`seq2text serve`: HTTP/JSON endpoints for bundles, on FastAPI + uvicorn, with dynamic batching.

    POST /translate  {"texts": ["ein Satz", ...]}     → {"translations": [...]}            (translation)
    POST /classify   {"texts": [...]}                 → {"labels": [...], "probabilities": [...]}
    POST /predict    {"texts": [...]}                 → {"values": [...]}                  (text regression)
    POST /score      {"texts": [...]}                 → {"log_probs": [...]}               (language models)
    POST /generate   {"prompt": "...", "max_tokens": 50, "temperature": 1.0, "top_k": null, "seed": null}
    POST /forecast   {"history": [{"time": ..., "<value column>": ...}, ...], "horizon": null}
    GET  /  (the playground: a page to try the model in a browser; seq2text.serving.playground)
    GET  /health, /health/live (the process answers), /health/ready (a model can take work; else 503)
    GET  /info (task, languages, metrics, sacreBLEU signature, limits, batching counters, model processes)
    GET  /metrics (Prometheus text format: requests by route and status, latency, sentences per decoding step,
         queue depth, sentences in flight per model process, restarts)

Texts of concurrent requests are decoded together (seq2text.serving.batching): translation continuously by
default (sentences join and leave the running beam search between steps), the other tasks per group of requests.
Bad requests get a JSON 4xx (`{"error": ...}`): malformed JSON or fields 422, too many texts or characters 413,
an unknown route 404, a request unanswered within `--timeout` seconds 504; a client that disconnects has its
sentences taken out of the batch. A model thread or process that dies is started again, its requests decoded again
(seq2text.serving.batching). On SIGINT/SIGTERM uvicorn finishes the requests in flight before the process exits.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from seq2text.errors import ConfigError, Seq2TextError
from seq2text.hardware import OPENMP_WAIT_POLICY, usable_cores
from seq2text.registry import task_parts
from seq2text.serving.batching import STEP_BUCKETS, ContinuousBatcher, DynamicBatcher, ProcessBatcher

try:
    import uvicorn
    from fastapi import FastAPI, Request, Response
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException
except ImportError as missing:  # an optional extra: the core install stays small
    raise Seq2TextError(f"seq2text serve needs FastAPI, uvicorn and prometheus_client ({missing}): "
                        "pip install 'seq2text[serve]'") from None

from seq2text.serving.playground import add_playground  # noqa: E402 - these need FastAPI, checked above
from seq2text.serving.requests import check_limits, within  # noqa: E402

__all__ = ["ServeConfig", "create_app", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """How the server listens, batches and limits requests (the `seq2text serve` options; `max_wait` and `timeout`
    in seconds, `timeout` None: no limit; `threads` None: the cores divided among the `workers` model processes, or
    torch's default with one)."""

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
    timeout: float | None = 60.0

    def __post_init__(self) -> None:
        if self.timeout is not None and not 0 < self.timeout < math.inf:
            raise ConfigError(f"--timeout must be a positive number of seconds, got {self.timeout}")
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


def _info(predictor: object, models: Sequence[str], config: ServeConfig,
          batcher: DynamicBatcher | ContinuousBatcher | ProcessBatcher | None, routes: list[str]) -> dict:
    parts = task_parts(predictor.task)
    one_process = {"count": 1, "pids": [os.getpid()], "alive": [batcher is None or batcher.ready],
                   "restarts": [batcher.counters.restarts if batcher is not None else 0]}
    info = {"task": predictor.task, "models": [str(m) for m in models], "routes": routes,
            "metrics": {k: v for k, v in predictor.metrics.items() if isinstance(v, int | float | str | list | dict)},
            "limits": {"max_lines": config.max_lines, "max_chars": config.max_chars, "timeout_s": config.timeout},
            "batching": {"mode": "continuous" if _continuous(predictor, config) else "dynamic",
                         "max_batch_size": config.max_batch_size, "max_wait_ms": config.max_wait * 1000},
            **(parts.info(predictor) if parts.info else {}),
            "workers": batcher.describe() if isinstance(batcher, ProcessBatcher) else one_process,
            "threads": {"torch": _model_threads(config),
                        "openmp_wait_policy": os.environ.get(OPENMP_WAIT_POLICY, "unset (OpenMP's default)")}}
    if batcher is not None:
        counters = batcher.counters
        shown = {k: v for k, v in asdict(counters).items() if k != "step_sizes"}  # /metrics has the histogram
        shown["mean_batch_size"] = round(counters.texts / counters.batches, 2) if counters.batches else 0.0
        if counters.steps:  # continuous batching: sentences decoded together, on average over the steps
            shown["mean_sentences_per_step"] = round(counters.step_sentences / counters.steps, 2)
        info["batching"].update(shown)
    return info


def _continuous(predictor: object, config: ServeConfig) -> bool:
    """Whether sentences join and leave a running search (`--batching continuous` and a task whose route can)."""
    route = task_parts(predictor.task).route
    return route is not None and route.continuous and config.batching == "continuous"


def _batcher(predictor: object, config: ServeConfig, models: Sequence[str], executor: ThreadPoolExecutor
             ) -> DynamicBatcher | ContinuousBatcher | ProcessBatcher:
    """The batcher of the predictor's text route (the task registry's): model processes, continuous or dynamic."""
    if config.workers > 1:  # continuous batching (create_app checked)
        if not models:
            raise ConfigError("model processes (--workers > 1) load the bundles themselves: give their paths")
        return ProcessBatcher(models, config.max_batch_size, config.max_wait, config.workers, _model_threads(config))
    if _continuous(predictor, config):
        return ContinuousBatcher(predictor, config.max_batch_size, config.max_wait)
    run = getattr(predictor, task_parts(predictor.task).route.method)
    return DynamicBatcher(run, config.max_batch_size, config.max_wait, executor)


def create_app(predictor: object, config: ServeConfig, models: Sequence[str] = ()) -> FastAPI:
    """The app serving `predictor` (from `seq2text.load`): its task's routes (the registry's), the probes, /info and
    /metrics."""
    if config.workers > 1 and not _continuous(predictor, config):
        raise ConfigError(f"--workers {config.workers}: model processes serve translation with continuous batching; "
                          f"a {predictor.task} model (or --batching dynamic) runs in the server's process: drop "
                          "--workers")
    parts = task_parts(predictor.task)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2text-model")
    batcher = _batcher(predictor, config, models, executor) if parts.route is not None else None

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
    routes = ["/health", "/info"]
    _add_probes(app, predictor, batcher)
    if batcher is not None:
        _add_text_route(app, parts.route.path, parts.route.key, batcher, config)
        routes.append(parts.route.path)
    if parts.own_route is not None:
        _OWN_ROUTES[parts.own_route](app, predictor, executor, config.timeout)
        routes.append(parts.own_route)
    page = add_playground(app, predictor, executor, config.max_chars, config.timeout)  # GET / and its helpers
    app.get("/info")(lambda: _info(predictor, models, config, batcher, routes))
    _add_metrics(app, batcher, [*routes, *page, "/health/live", "/health/ready", "/metrics"])
    return app


def _add_probes(app: FastAPI, predictor: object, batcher: DynamicBatcher | ContinuousBatcher | ProcessBatcher | None
                ) -> None:
    """/health (as always), /health/live (the server answers) and /health/ready (a model can take work, else 503)."""
    app.get("/health")(lambda: {"status": "ok", "task": predictor.task})
    app.get("/health/live")(lambda: {"status": "live"})

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        if batcher is None or batcher.ready:
            return JSONResponse({"status": "ready", "task": predictor.task})
        return _error(503, "no model can take work now (a model process is starting again; see /info)")


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


def _add_text_route(app: FastAPI, path: str, key: str, batcher: DynamicBatcher | ContinuousBatcher | ProcessBatcher,
                    config: ServeConfig) -> None:
    @app.post(path)
    async def handle(body: TextsIn, request: Request) -> dict:
        texts = body.texts
        check_limits(texts, config.max_lines, config.max_chars)
        results = await within(batcher.submit(texts), request, config.timeout)
        if key == "probabilities":  # a classifier: the label and its probabilities
            return {"labels": [max(p, key=p.get) for p in results], "probabilities": results}
        return {key: results}


def _add_generate(app: FastAPI, predictor: object, executor: ThreadPoolExecutor, timeout: float | None) -> None:
    @app.post("/generate")
    async def generate(body: GenerateIn, request: Request) -> dict:
        text = await within(asyncio.get_running_loop().run_in_executor(executor, lambda: predictor.generate(
            body.prompt, body.max_tokens, body.temperature, body.top_k, body.seed)), request, timeout)
        return {"text": text}


def _add_forecast(app: FastAPI, predictor: object, executor: ThreadPoolExecutor, timeout: float | None) -> None:
    @app.post("/forecast")
    async def forecast(body: ForecastIn, request: Request) -> dict:
        import pandas as pd

        table = await within(asyncio.get_running_loop().run_in_executor(
            executor, lambda: predictor.forecast(pd.DataFrame(body.history), body.horizon)), request, timeout)
        return {"forecast": [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]}


_OWN_ROUTES = {"/generate": _add_generate, "/forecast": _add_forecast}  # the registry's `own_route`s


# ---------------------------------------------------------------------------------------------- /metrics
def _add_metrics(app: FastAPI, batcher: DynamicBatcher | ContinuousBatcher | ProcessBatcher | None,
                 paths: list[str]) -> None:
    """/metrics in Prometheus' text format, from prometheus_client, in a registry of this app's own: requests by
    route and status and their latency (measured around every request), and the batcher's counts read at scrape."""
    registry = CollectorRegistry()
    requests = Counter("seq2text_requests", "HTTP requests answered, by route and status", ["route", "status"],
                       registry=registry)
    latency = Histogram("seq2text_request_duration_seconds", "time from a request's arrival to its answer",
                        ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    if batcher is not None:
        registry.register(_BatcherMetrics(batcher))
    app.add_middleware(_Measured, requests=requests, latency=latency, paths=frozenset(paths))
    app.get("/metrics")(lambda: Response(generate_latest(registry), media_type="text/plain; version=0.0.4"))


class _Measured:
    """ASGI middleware counting every HTTP request by route (a path outside `paths`: "other") and status, and
    observing its latency. Plain ASGI, not Starlette's BaseHTTPMiddleware, so that handlers still see the client
    disconnect."""

    def __init__(self, app: Any, requests: Counter, latency: Histogram, paths: frozenset[str]) -> None:  # noqa: ANN401
        self.app, self.requests, self.latency, self.paths = app, requests, latency, paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope["path"] if scope["path"] in self.paths else "other"
            self.requests.labels(route, str(status[0])).inc()
            self.latency.labels(route).observe(time.perf_counter() - start)


class _BatcherMetrics:
    """A prometheus_client collector of a batcher's counters (each process's, with --workers), read at scrape."""

    def __init__(self, batcher: DynamicBatcher | ContinuousBatcher | ProcessBatcher) -> None:
        self.batcher = batcher

    def collect(self) -> list:
        batcher, counters = self.batcher, self.batcher.counters
        cumulative = [sum(counters.step_sizes[: i + 1]) for i in range(len(STEP_BUCKETS))]
        steps = HistogramMetricFamily("seq2text_sentences_per_step", "sentences decoded together in a decoding step",
                                      buckets=[*zip(map(str, STEP_BUCKETS), cumulative, strict=True),
                                               ("+Inf", counters.steps)], sum_value=counters.step_sentences)
        in_flight = GaugeMetricFamily("seq2text_sentences_in_flight", "sentences sent to a model process and not "
                                      "answered yet", labels=["process"])
        for number, sentences in enumerate(batcher.describe()["in_flight"] if isinstance(batcher, ProcessBatcher)
                                           else [batcher.in_flight]):
            in_flight.add_metric([str(number)], sentences)
        return [steps, in_flight,
                GaugeMetricFamily("seq2text_queue_depth", "requests waiting for a model", value=batcher.queued),
                GaugeMetricFamily("seq2text_ready", "1 while a model can take work", value=int(batcher.ready)),
                CounterMetricFamily("seq2text_restarts", "model threads or processes started again after dying",
                                    value=counters.restarts),
                CounterMetricFamily("seq2text_cancelled_requests", "requests dropped undecoded (the client went "
                                    "away or ran past --timeout)", value=counters.cancelled),
                CounterMetricFamily("seq2text_texts", "texts received", value=counters.texts)]


def _plain(value: object) -> object:
    """A JSON-safe cell: timestamps as ISO strings, numpy scalars as Python numbers."""
    if isinstance(value, datetime.date):  # pandas' Timestamp is a datetime
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def _model_threads(config: ServeConfig) -> int:
    """torch's threads for each model: `config.threads`, else the cores divided among the workers."""
    if config.threads is not None:
        return config.threads
    return torch.get_num_threads() if config.workers == 1 else max(1, usable_cores() // config.workers)


def serve(models: Sequence[str | Path], config: ServeConfig) -> None:
    """Loads the bundles (several: one ensemble; this first load checks them before any model process starts)
    and serves them until SIGINT/SIGTERM."""
    from seq2text.predict.loading import load

    if config.threads is not None and config.workers == 1:
        torch.set_num_threads(config.threads)
    predictor = load(models[0] if len(models) == 1 else list(models))
    app = create_app(predictor, config, [str(m) for m in models])
    uvicorn.run(app, host=config.host, port=config.port, log_level="info",
                timeout_graceful_shutdown=int(config.graceful_timeout))
