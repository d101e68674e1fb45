"""Consume every event and append it to the ledger, acking a batch only after DuckDB committed it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from shared.bus import Bus, Delivery
from shared.events import Event
from shared.ledger import Ledger
from shared.settings import Settings

__all__ = ["DURABLE", "run", "store_batch"]

DURABLE = "ledger"
log = structlog.get_logger(__name__)


def store_batch(ledger: Ledger, batch: Sequence[tuple[Event, Delivery]], stored_up_to: int) -> int:
    """Append the events of a fetched batch not stored yet, with their bytes exactly as published."""
    rows = [(e, d.stream_seq, d.msg.data) for e, d in batch if d.stream_seq > stored_up_to]
    return ledger.append(rows)


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    """Append every event on the bus to the ledger, in stream order, exactly once.

    The ledger keeps its own position (the highest stream sequence it committed, in the same
    transaction as the events), and on every start the consumer is recreated to deliver from just
    after it. So a crash at any moment loses nothing and doubles nothing, and a redelivery can
    never reorder the log; acks only report progress. Unique event ids also absorb an event that
    was published twice outside JetStream's duplicate window.
    """
    with Ledger(settings.ledger_path) as ledger:
        stored_up_to = ledger.last_stream_seq()
        log.info(
            "ledger_opened", path=str(settings.ledger_path), events=ledger.count(), resume_after=stored_up_to
        )

        async def handle(batch: Sequence[tuple[Event, Delivery]]) -> None:
            nonlocal stored_up_to
            new = store_batch(ledger, batch, stored_up_to)
            stored_up_to = max(stored_up_to, batch[-1][1].stream_seq)
            log.debug("batch_stored", fetched=len(batch), new=new, stored_up_to=stored_up_to)

        subscription = await bus.subscription(
            DURABLE,
            ack_all=True,
            max_deliver=100,
            ack_wait=60.0,
            max_ack_pending=50_000,
            start_after=stored_up_to,
        )
        await bus.consume_batches(subscription, handle, stop, batch=2000)
