"""The lifecycle every service shares: settings, logging, signals, bus connection, orderly shutdown.

A service body is `async def body(bus, stop)`: it consumes until `stop` is set. SIGTERM and SIGINT set
`stop`; the exit stack then drains the NATS connection, so in-flight acks go out before the process ends.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import structlog

from shared.bus import Bus
from shared.errors import ConfigError
from shared.events import Producer
from shared.logging import configure_logging
from shared.settings import Settings

__all__ = ["ServiceBody", "run_service"]

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
        loop.add_signal_handler(signum, stop.set)
    async with AsyncExitStack() as stack:
        bus = await Bus.connect(settings.nats_url, Producer(service=name, instance=settings.instance))
        stack.push_async_callback(bus.close)
        log.info("service_started", nats=settings.nats_url)
        await body(bus, stop, settings)
    log.info("service_stopped")
