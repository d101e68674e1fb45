"""Where the dashboard's events come from: the JetStream stream while the lab runs, or the ledger after.

Live, the dashboard follows the stream from its first event with the services' own `LiveProjection`
(which resubscribes after a NATS restart from the last sequence it saw, so nothing is lost or folded
twice); the ledger is read once, read-only, so an audit needs no NATS at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from dashboard.timeline import Timeline
from shared.bus import Bus, bus_away
from shared.ledger import read_only
from shared.live import LiveProjection

__all__ = ["follow_bus", "from_ledger"]

log = structlog.get_logger(__name__)
_CHECK_EVERY_S = 1.0


def from_ledger(path: Path) -> Timeline:
    """Every event in the ledger at `path`, folded."""
    with read_only(path, "watch the lab live with --nats-url instead") as ledger:
        return Timeline(ledger.events())


async def follow_bus(bus: Bus, timeline: Timeline, stop: asyncio.Event) -> None:
    """Fold every event of the stream into `timeline` until `stop` is set."""
    projection = LiveProjection(bus, on_event=timeline.add)
    try:
        await projection.start()
        while not stop.is_set():
            try:
                await projection.caught_up()  # replaces a consumer that a NATS restart lost
            except Exception as err:
                if not bus_away(err):
                    raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CHECK_EVERY_S)
    finally:
        await projection.stop()
