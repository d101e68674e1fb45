"""Fold projections straight from the JetStream stream: the live path, same fold as replay."""

from __future__ import annotations

from nats.js import api

from shared.bus import STREAM, Bus
from shared.errors import MalformedEvent
from shared.events import SUBJECT_PREFIX, decode
from shared.projections import Lab, evolve

__all__ = ["fold_stream"]


async def fold_stream(bus: Bus, lab: Lab | None = None, *, campaign_id: str | None = None) -> Lab:
    """Every event now in the stream (of one campaign, or all), folded in stream order.

    Malformed messages are passed over here: their `event-rejected` records are events of their own.
    """
    state = lab or Lab()
    subject = f"{SUBJECT_PREFIX}.{campaign_id or '*'}.>"
    info = await bus.js.stream_info(STREAM, subjects_filter=subject)
    if not info.state.subjects:
        return state
    subscription = await bus.js.subscribe(
        subject, stream=STREAM, ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL
    )
    try:
        while True:
            msg = await subscription.next_msg(timeout=10)
            try:
                state = evolve(state, decode(msg.data))
            except MalformedEvent:
                pass
            if msg.metadata.num_pending == 0:
                return state
    finally:
        await subscription.unsubscribe()
