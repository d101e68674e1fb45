"""Where the dashboard's events come from: the JetStream stream while the lab runs, or the ledger after.

Live, the dashboard follows the stream with `StreamReader` (shared/reader.py): direct gets from the last
sequence it folded, woken by core NATS. It needs only to read, so any NATS user can run the dashboard,
the read-only `cli` included, and it folds a long stream as fast as LiveProjection's ordered consumer.
After a NATS restart it goes on from its sequence, so nothing is lost or folded twice. The ledger is
read once, read-only, so an audit needs no NATS at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dashboard.timeline import Timeline
from shared.bus import Bus
from shared.ledger import read_only
from shared.reader import StreamReader

__all__ = ["follow_bus", "from_ledger"]


def from_ledger(path: Path) -> Timeline:
    """Every event in the ledger at `path`, folded."""
    with read_only(path, "watch the lab live with --nats-url instead") as ledger:
        return Timeline(ledger.events())


async def follow_bus(bus: Bus, timeline: Timeline, stop: asyncio.Event) -> None:
    """Fold every event of the stream into `timeline` until `stop` is set."""
    await StreamReader(bus, on_event=timeline.add).follow(stop)
