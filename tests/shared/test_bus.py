"""The bus: dead letters for bad input, passing over unknown types, and giving up on failing handlers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from shared.bus import Bus, Delivery
from shared.events import MAX_EVENT_BYTES, Event, EventRejected, encode, subject_for
from tests.factories import small_campaign

SUBJECT = subject_for("c1", "run-finished")


async def _consume_until(
    bus: Bus,
    durable: str,
    handler: Callable[[Event, Delivery], Awaitable[None]],
    done: Callable[[], bool],
    **kw: int,
) -> None:
    stop = asyncio.Event()
    subscription = await bus.subscription(durable, **kw)  # type: ignore[arg-type]
    task = asyncio.create_task(bus.consume(subscription, handler, stop, **kw))
    try:
        async with asyncio.timeout(30):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def test_malformed_messages_become_rejections_and_consuming_goes_on(bus: Bus) -> None:
    """Bad JSON, wrong types, a bad type name and an oversize message are dead-lettered; consuming goes on."""
    valid = small_campaign(runs=1)
    wire = json.loads(encode(valid[-1]))
    wrong_type = json.dumps({**wire, "payload": {**wire["payload"], "value": "fast"}}).encode()
    bad_type_name = json.dumps({**wire, "type": "Run Finished!"}).encode()
    oversize = b'{"pad": "' + b"x" * (MAX_EVENT_BYTES + 10) + b'"}'
    bad = [b"{not json", wrong_type, bad_type_name, oversize]
    for raw in bad:
        await bus.js.publish(SUBJECT, raw)
    await bus.publish_many(valid)

    handled: list[Event] = []

    async def handle(e: Event, _: Delivery) -> None:
        handled.append(e)

    rejections: list[Event] = []

    async def collect(e: Event, _: Delivery) -> None:
        if isinstance(e.payload, EventRejected):
            rejections.append(e)

    await _consume_until(bus, "reader", handle, lambda: len(handled) >= len(valid) + len(bad))
    # the reader saw the valid events and then its own rejection records, one per bad message
    assert [e.event_id for e in handled[: len(valid)]] == [e.event_id for e in valid]
    await _consume_until(bus, "auditor", collect, lambda: len(rejections) >= len(bad))

    assert len(rejections) == len(bad)
    reasons = [r.payload.reason for r in rejections]  # type: ignore[attr-defined]
    assert reasons[0].startswith("json_invalid")
    assert "payload.value" in reasons[1]
    assert "type" in reasons[2]
    assert reasons[3].startswith("oversize")
    for raw, rejection in zip(bad, rejections, strict=True):
        payload = rejection.payload
        assert isinstance(payload, EventRejected)
        assert payload.size == len(raw) and payload.subject == SUBJECT
        assert await bus.blobs.get(payload.sha256) == raw


async def test_unknown_type_is_delivered_as_unrecognized_not_rejected(bus: Bus) -> None:
    """A well-formed event of a type this code does not know reaches handlers, marked unrecognized."""
    wire = json.loads(encode(small_campaign(runs=1)[-1]))
    wire.update(type="run-teleported", payload={"run_id": "r9", "destination": "mars"})
    await bus.js.publish(subject_for("c1", "run-teleported"), json.dumps(wire).encode())
    seen: list[Event] = []

    async def handle(e: Event, _: Delivery) -> None:
        seen.append(e)

    await _consume_until(bus, "reader", handle, lambda: len(seen) >= 1)
    await asyncio.sleep(0.3)  # a rejection, if one were made, would arrive now
    assert [(e.type, e.recognized) for e in seen] == [("run-teleported", False)]
    assert seen[0].payload.model_dump() == {"run_id": "r9", "destination": "mars"}


async def test_handler_that_keeps_failing_is_dead_lettered_after_max_deliver(bus: Bus) -> None:
    """A poison event is retried max_deliver times, then recorded as rejected, and later events still flow."""
    poison, healthy = small_campaign(runs=1)[:2]
    await bus.publish_many([poison, healthy])
    attempts: dict[str, int] = {}
    rejected: list[Event] = []

    async def handle(e: Event, _: Delivery) -> None:
        attempts[e.event_id] = attempts.get(e.event_id, 0) + 1
        if isinstance(e.payload, EventRejected):
            rejected.append(e)
        elif e.event_id == poison.event_id:
            raise RuntimeError("cannot handle this one")

    await _consume_until(bus, "fragile", handle, lambda: bool(rejected), max_deliver=3)
    assert attempts[poison.event_id] == 3
    assert attempts[healthy.event_id] == 1
    assert "handler failed 3 times" in rejected[0].payload.reason  # type: ignore[attr-defined]
