"""`seq2text serve`: HTTP/JSON endpoints for bundles, on FastAPI + uvicorn, with dynamic batching.

    POST /translate  {"texts": ["ein Satz", ...]}     → {"translations": [...]}            (translation)
    POST /classify   {"texts": [...]}                 → {"labels": [...], "probabilities": [...]}
    POST /predict    {"texts": [...]}                 → {"values": [...]}                  (text regression)
    POST /score      {"texts": [...]}                 → {"log_probs": [...]}               (language models)
    POST /generate   {"prompt": "...", "max_tokens": 50, "temperature": 1.0, "top_k": null, "seed": null}
    POST /forecast   {"history": [{"time": ..., "<value column>": ...}, ...], "horizon": null}
    GET  /health, GET /info (task, languages, metrics, sacreBLEU signature, limits, batching counters)

Texts of concurrent requests are decoded together (seq2text.serving.batching): translation continuously by
default (sentences join and leave the running beam search between steps), the other tasks per group of requests.
Bad requests get a JSON 4xx (`{"error": ...}`): malformed JSON or fields 422, too many texts or characters 413,
an unknown route 404. On SIGINT/SIGTERM uvicorn finishes the requests in flight before the process exits.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import os
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
from seq2text.serving.batching import ContinuousBatcher, DynamicBatcher, ProcessBatcher

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

__all__ = ["ServeConfig", "create_app", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """How the server listens, batches and limits requests (the `seq2text serve` options; `max_wait` in seconds,
    `threads` None: the cores divided among the `workers` model processes, or torch's default with one)."""

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
    parts, one_process = task_parts(predictor.task), {"count": 1, "pids": [os.getpid()], "alive": [True]}
    info = {"task": predictor.task, "models": [str(m) for m in models], "routes": routes,
            "metrics": {k: v for k, v in predictor.metrics.items() if isinstance(v, int | float | str | list | dict)},
            "limits": {"max_lines": config.max_lines, "max_chars": config.max_chars},
            "batching": {"mode": "continuous" if _continuous(predictor, config) else "dynamic",
                         "max_batch_size": config.max_batch_size, "max_wait_ms": config.max_wait * 1000},
            **(parts.info(predictor) if parts.info else {}),
            "workers": batcher.describe() if isinstance(batcher, ProcessBatcher) else one_process,
            "threads": {"torch": _model_threads(config),
                        "openmp_wait_policy": os.environ.get(OPENMP_WAIT_POLICY, "unset (OpenMP's default)")}}
    if batcher is not None:
        counters = batcher.counters
        shown = asdict(counters)
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
    """The app serving `predictor` (from `seq2text.load`): its task's routes (the registry's), /health and /info."""
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
    app.get("/health")(lambda: {"status": "ok", "task": predictor.task})
    routes = ["/health", "/info"]
    if batcher is not None:
        _add_text_route(app, parts.route.path, parts.route.key, batcher, config)
        routes.append(parts.route.path)
    if parts.own_route is not None:
        _OWN_ROUTES[parts.own_route](app, predictor, executor)
        routes.append(parts.own_route)
    app.get("/info")(lambda: _info(predictor, models, config, batcher, routes))
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
    @app.post(path)
    async def handle(request: TextsIn) -> dict:
        texts = request.texts
        if len(texts) > config.max_lines:  # 413 for a request over the limits
            raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {config.max_lines} "
                                "(--max-lines)")
        for number, text in enumerate(texts):
            if len(text) > config.max_chars:
                raise HTTPException(413, f"text {number} has {len(text)} characters; the limit is {config.max_chars} "
                                    f"(--max-chars)")
        results = await batcher.submit(texts)
        if key == "probabilities":  # a classifier: the label and its probabilities
            return {"labels": [max(p, key=p.get) for p in results], "probabilities": results}
        return {key: results}


def _add_generate(app: FastAPI, predictor: object, executor: ThreadPoolExecutor) -> None:
    @app.post("/generate")
    async def generate(request: GenerateIn) -> dict:
        text = await asyncio.get_running_loop().run_in_executor(executor, lambda: predictor.generate(
            request.prompt, request.max_tokens, request.temperature, request.top_k, request.seed))
        return {"text": text}


def _add_forecast(app: FastAPI, predictor: object, executor: ThreadPoolExecutor) -> None:
    @app.post("/forecast")
    async def forecast(request: ForecastIn) -> dict:
        import pandas as pd

        table = await asyncio.get_running_loop().run_in_executor(
            executor, lambda: predictor.forecast(pd.DataFrame(request.history), request.horizon))
        return {"forecast": [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]}


_OWN_ROUTES = {"/generate": _add_generate, "/forecast": _add_forecast}  # the registry's `own_route`s


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
