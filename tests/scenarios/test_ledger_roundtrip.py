"""Events published on the bus reach the ledger once each, and replay rebuilds what was published."""

from __future__ import annotations

import signal
from pathlib import Path

from shared.bus import Bus
from shared.ledger import Ledger
from shared.projections import snapshot
from shared.replay import fold
from tests.conftest import start_service, wait_for
from tests.factories import small_campaign


async def test_published_events_are_stored_in_order_and_replayed(bus: Bus, nats_server, home: Path) -> None:
    """Publish a campaign, let the ledger process store it, and replay equals folding what was sent."""
    events = small_campaign(runs=5)
    ledger = start_service("ledger", nats_server.url, home, home / "ledger.log")
    try:
        await bus.publish_many(events)
        await wait_for(lambda: bus.consumer_caught_up("ledger"), 30, "the ledger to store every event")
    finally:
        ledger.send_signal(signal.SIGTERM)
        assert ledger.wait(timeout=20) == 0, (home / "ledger.log").read_text()
    with Ledger(home / "ledger.duckdb", read_only=True) as stored:
        replayed = list(stored.events())
    assert replayed == events
    assert snapshot(fold(replayed).campaigns["c1"]) == snapshot(fold(events).campaigns["c1"])


async def test_republished_event_is_stored_once(bus: Bus, nats_server, home: Path) -> None:
    """The same event published twice is deduplicated by JetStream and stored once."""
    events = small_campaign(runs=1)
    first = await bus.publish(events[0])
    again = await bus.publish(events[0])
    assert not first.duplicate and again.duplicate
    ledger = start_service("ledger", nats_server.url, home, home / "ledger.log")
    try:
        await wait_for(lambda: bus.consumer_caught_up("ledger"), 30, "the ledger to catch up")
    finally:
        ledger.send_signal(signal.SIGTERM)
        ledger.wait(timeout=20)
    with Ledger(home / "ledger.duckdb", read_only=True) as stored:
        assert stored.count() == 1
