"""The playground of `seq2text serve`: GET / gives one static page (playground.html: inline CSS and plain
JavaScript, nothing loaded from elsewhere) that asks GET /info for the task and calls the same JSON endpoints as any
client. A translator also gets the endpoint the page draws its n-best list and attention heatmap from:

    POST /translate/details  {"text": "ein Satz", "n_best": 5, "beam_size": null}
        → {"source_tokens": [...], "beam_size": 5, "hypotheses": [{"text", "score", "tokens"}, ...],
           "attention": [[...], ...]}   (the best hypothesis's, (len(tokens) + 1, len(source_tokens)); [] for "")
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from seq2text.predict.translator import Translation, Translator
from seq2text.serving.requests import check_limits, within

__all__ = ["DetailsIn", "add_playground"]


class DetailsIn(BaseModel):
    """A request for one sentence's n-best list and attention (`beam_size` None: the bundle's, at least `n_best`)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="one source sentence")
    n_best: int = Field(5, ge=1, le=20)
    beam_size: int | None = Field(None, ge=1, le=50)


def add_playground(app: FastAPI, predictor: object, executor: ThreadPoolExecutor, max_chars: int = 2000,
                   timeout: float | None = None) -> list[str]:
    """Adds GET / (the page) and, for a translator, POST /translate/details, whose model calls run in `executor`
    (the server's model thread); texts longer than `max_chars` get a 413 and answers later than `timeout` seconds
    a 504, as on the other routes → the paths added."""
    page = files("seq2text.serving").joinpath("playground.html").read_text(encoding="utf-8")
    app.get("/", response_class=HTMLResponse, include_in_schema=False)(lambda: HTMLResponse(page))
    if not isinstance(predictor, Translator):
        return ["/"]
    _add_details(app, predictor, executor, max_chars, timeout)
    return ["/", "/translate/details"]


def _add_details(app: FastAPI, translator: Translator, executor: ThreadPoolExecutor, max_chars: int,
                 timeout: float | None) -> None:
    @app.post("/translate/details")
    async def details(body: DetailsIn, request: Request) -> dict:
        check_limits([body.text], 1, max_chars)
        beam_size = max(body.n_best, translator.search.beam_size) if body.beam_size is None else body.beam_size
        if body.n_best > beam_size:
            raise HTTPException(422, f"n_best={body.n_best} exceeds beam_size={beam_size}: ask for at most "
                                "beam_size hypotheses")
        found = await within(asyncio.get_running_loop().run_in_executor(executor, lambda: translator.translate_nbest(
            [body.text], body.n_best, beam_size, return_attention=True)), request, timeout)
        return _described(found[0], beam_size)


def _described(hyps: list[Translation], beam_size: int) -> dict:
    """The JSON of one sentence's hypotheses (best first): the best one's attention rounded to 4 decimals."""
    best = hyps[0]
    attention = [] if best.attention is None else best.attention.float().round(decimals=4).tolist()  # (T + 1, S)
    return {"source_tokens": best.source_tokens, "beam_size": beam_size, "attention": attention,
            "hypotheses": [{"text": h.text, "score": h.score, "tokens": h.tokens} for h in hyps]}
