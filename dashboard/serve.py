"""Run the dashboard: fold the log (live from the bus, or from the ledger) and serve the app on it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from pathlib import Path

import uvicorn

from dashboard.app import create_app
from dashboard.sources import follow_bus, from_ledger
from dashboard.timeline import Timeline

__all__ = ["loopback", "serve"]


def loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (then no token is needed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(*, host: str, port: int, token: str | None, nats_url: str | None, ledger: Path) -> None:
    """Serve until interrupted: live from `nats_url` if given, else the ledger's events as they stand."""
    stop = asyncio.Event()
    if nats_url:
        timeline = Timeline()
        follower = asyncio.create_task(follow_bus(nats_url, timeline, stop))
    else:
        timeline, follower = from_ledger(ledger), None
    config = uvicorn.Config(
        create_app(timeline, live=bool(nats_url), token=token),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    waited = {serving} if follower is None else {serving, follower}
    try:
        done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a follower that could not reach NATS ends the dashboard, saying why
    finally:
        stop.set()
        server.should_exit = True
        for task in waited:
            with contextlib.suppress(asyncio.CancelledError):
                await task
