"""What every served route does with a request, in one place: the size limits (413) and the deadline (504, a
client that disconnects cancels its work)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

__all__ = ["check_limits", "within"]


def check_limits(texts: Sequence[str], max_lines: int, max_chars: int) -> None:
    """A 413 naming the option to change for more than `max_lines` texts or a text over `max_chars` characters."""
    if len(texts) > max_lines:
        raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {max_lines} (--max-lines)")
    for number, text in enumerate(texts):
        if len(text) > max_chars:
            raise HTTPException(413, f"text {number} has {len(text)} characters; the limit is {max_chars} "
                                "(--max-chars)")


async def within(work: Awaitable, request: Request, timeout: float | None) -> Any:  # noqa: ANN401
    """`work`'s result; past `timeout` seconds a 504, and a client that disconnects cancels it (a batcher drops a
    cancelled request's sentences)."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    if task in done:
        return task.result()
    await asyncio.gather(task, return_exceptions=True)
    if gone in done:
        raise HTTPException(499, "the client closed the connection")  # nobody reads it
    raise HTTPException(504, f"no answer within {timeout:g} s (the server's --timeout); try again, or send fewer "
                        "texts per request")


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (the body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
