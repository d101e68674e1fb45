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
from shared.bus import Bus
from shared.events import Producer

__all__ = ["loopback", "serve"]


def loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (then no token is needed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(
    *, host: str, port: int, token: str | None, nats_url: str | None, home: Path, ledger: Path, user: str
) -> None:
    """Serve until interrupted: live from `nats_url` if given (and acting as `user`), else the ledger's
    events as they stand (read-only)."""
    stop = asyncio.Event()
    # A reader: it leaves creating the stream to the lab's services (a read-only user may not).
    producer = Producer(service="dashboard", instance=user)
    bus = await Bus.connect(nats_url, producer, ensure_stream=False) if nats_url else None
    timeline = Timeline() if bus is not None else from_ledger(ledger)
    follower = asyncio.create_task(follow_bus(bus, timeline, stop)) if bus is not None else None
    config = uvicorn.Config(
        create_app(timeline, home=home, bus=bus, user=user, token=token),
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
            task.result()  # a follower that lost the bus for good ends the dashboard, saying why
    finally:
        stop.set()
        server.should_exit = True
        for task in waited:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if bus is not None:
            await bus.close()
