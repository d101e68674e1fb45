"""The lifecycle every service shares: settings, logging, signals, bus connection, orderly shutdown.

A service body is `async def body(bus, stop)`: it consumes until `stop` is set. SIGTERM and SIGINT set
`stop`; the exit stack then flushes the NATS connection, so in-flight acks go out before the process ends.

Shutdown is bounded: a body that has not returned `SHUTDOWN_S` after `stop` is cancelled, and a process
still alive `SHUTDOWN_S + 5` seconds after the signal (an await that swallows its cancellation, a
flush to a server that is away) is ended by a watchdog thread. A second signal ends it at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import structlog

from shared.bus import Bus
from shared.errors import ConfigError
from shared.events import Producer
from shared.logging import configure_logging
from shared.secrets import shown_url
from shared.settings import Settings

__all__ = ["SHUTDOWN_S", "ServiceBody", "run_service"]

SHUTDOWN_S = 10.0

ServiceBody = Callable[[Bus, asyncio.Event, Settings], Awaitable[None]]


async def run_service(name: str, body: ServiceBody, settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    if settings.nats_url is None:
        raise ConfigError(
            "ALPHALAB_NATS_URL is not set: a service joins a running NATS server "
            "(`alphalab up` starts one and prints its URL)"
        )
    structlog.contextvars.bind_contextvars(service=name, instance=settings.instance)
    log = structlog.get_logger(name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(stop))
    async with AsyncExitStack() as stack:
        bus = await Bus.connect(settings.nats_url, Producer(service=name, instance=settings.instance))
        stack.push_async_callback(bus.close)
        log.info("service_started", nats=shown_url(settings.nats_url))
        running = asyncio.create_task(body(bus, stop, settings))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            done, _ = await asyncio.wait({running}, timeout=SHUTDOWN_S)
            if not done:
                log.warning("service_body_cancelled", after_s=SHUTDOWN_S)
                running.cancel()
                await asyncio.wait({running}, timeout=2.0)
        stopping.cancel()
        if running.done() and not running.cancelled():
            running.result()  # a body that crashed ends the process with its error
    log.info("service_stopped")


def _stopper(stop: asyncio.Event) -> Callable[[], None]:
    """The signal handler: set `stop` and arm the watchdog; a second signal exits at once."""

    def handle() -> None:
        if stop.is_set():
            os._exit(1)
        stop.set()
        watchdog = threading.Timer(SHUTDOWN_S + 5.0, os._exit, args=(1,))
        watchdog.daemon = True
        watchdog.start()

    return handle
