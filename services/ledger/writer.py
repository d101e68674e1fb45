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


def store_batch(ledger: Ledger, batch: Sequence[tuple[Event, Delivery]]) -> int:
    """Append a fetched batch, keeping each event's bytes exactly as they were published."""
    return ledger.append([(event, delivery.stream_seq, delivery.msg.data) for event, delivery in batch])


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    with Ledger(settings.ledger_path) as ledger:
        log.info("ledger_opened", path=str(settings.ledger_path), events=ledger.count())

        async def handle(batch: Sequence[tuple[Event, Delivery]]) -> None:
            new = store_batch(ledger, batch)
            log.debug("batch_stored", fetched=len(batch), new=new, last_seq=batch[-1][1].stream_seq)

        # Ack-all: one ack per committed batch. A crash before that ack redelivers the batch after
        # `ack_wait`, and the ledger's unique event ids make the second append a no-op.
        subscription = await bus.subscription(
            DURABLE, ack_all=True, max_deliver=1000, ack_wait=10.0, max_ack_pending=50_000
        )
        await bus.consume_batches(subscription, handle, stop, batch=2000)
