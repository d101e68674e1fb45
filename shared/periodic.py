"""Calling something every few seconds while a long piece of work runs (progress ticks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

__all__ = ["every"]

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def every(seconds: float, tick: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Call `tick` every `seconds` while the body runs (a failed tick is logged; the next may work)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await tick()
            except Exception as err:
                log.warning("tick_failed", error=repr(err))

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
