"""A NATS server killed and restarted on the same port and store: consumers, live projections and
heartbeats carry on, and an outage never spends a message's delivery budget."""

from __future__ import annotations

import asyncio
import time

from shared.bus import Bus, Delivery
from shared.errors import NatsUnavailable
from shared.events import Event, EventRejected, Producer
from shared.heartbeat import Heartbeat, beat_of
from shared.live import LiveProjection
from shared.nats_server import EmbeddedNats
from tests.conftest import wait_for
from tests.factories import small_campaign


async def _outage(server: EmbeddedNats, seconds: float) -> None:
    server.kill()
    await asyncio.sleep(seconds)
    server.restart()


async def test_a_handler_interrupted_by_outages_is_never_dead_lettered(
    bus: Bus, nats_server: EmbeddedNats
) -> None:
    """More interruptions than the failure budget, then the bus is back: handled, not rejected."""
    [start, *_] = small_campaign(runs=1)
    await bus.publish(start)
    interruptions, handled = 0, []

    async def handle(event: Event, delivery: Delivery) -> None:
        nonlocal interruptions
        if interruptions < 5:
            interruptions += 1
            raise NatsUnavailable("the bus is away")
        handled.append((event, delivery))

    rejected: list[Event] = []

    async def watch(event: Event, _: Delivery) -> None:
        if isinstance(event.payload, EventRejected):
            rejected.append(event)

    stop = asyncio.Event()
    work = await bus.subscription("work", ack_wait=2.0)
    audit = await bus.subscription("audit")
    tasks = [
        asyncio.create_task(bus.consume(work, handle, stop, max_deliver=2)),
        asyncio.create_task(bus.consume(audit, watch, stop)),
    ]
    try:
        await wait_for(lambda: interruptions >= 2, 20, "two interruptions")
        await _outage(nats_server, 1.0)
        await wait_for(lambda: bool(handled), 60, "the event to be handled after the outage")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert interruptions == 5 and handled[0][1].failures == 0
    assert not rejected, "an outage must not dead-letter anything"


async def test_a_real_failure_still_dead_letters_after_max_deliver(bus: Bus) -> None:
    """Failures are counted by the consumer: the third failure of three allowed dead-letters the event."""
    [start, *_] = small_campaign(runs=1)
    await bus.publish(start)
    seen: list[int] = []
    rejected: list[Event] = []

    async def handle(event: Event, delivery: Delivery) -> None:
        if isinstance(event.payload, EventRejected):
            rejected.append(event)
            return
        seen.append(delivery.failures)
        raise ValueError("broken handler")

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(await bus.subscription("w"), handle, stop, max_deliver=3))
    try:
        await wait_for(lambda: bool(rejected), 30, "the event to be dead-lettered")
        await asyncio.sleep(1.5)  # no fourth delivery follows the dead letter
    finally:
        stop.set()
        await task
    assert seen == [0, 1, 2]
    record = rejected[0]
    assert isinstance(record.payload, EventRejected) and "handler failed 3 times" in record.payload.reason
    assert (record.payload.event_id, record.campaign_id) == (start.event_id, start.campaign_id)


async def test_a_live_projection_follows_the_stream_across_a_server_restart(
    bus: Bus, nats_server: EmbeddedNats
) -> None:
    """Its ordered consumer dies with the server; it subscribes again from where it was, missing nothing."""
    events = small_campaign(runs=4)
    await bus.publish_many(events[:5])
    projection = LiveProjection(bus)
    await projection.start()
    await projection.settle(10)
    assert projection.lab.position == 5
    await _outage(nats_server, 0.5)
    await wait_for(lambda: bus.nc.is_connected, 20, "the client to reconnect")
    await bus.publish_many(events[5:])
    await projection.settle(20)
    assert projection.lab.position == len(events), "every event folded exactly once"
    assert projection.stream_seq == len(events)
    await projection.stop()


async def test_settle_says_the_bus_is_away_instead_of_hanging(bus: Bus, nats_server: EmbeddedNats) -> None:
    projection = LiveProjection(bus)
    await projection.start()
    await bus.publish(small_campaign(runs=0)[0])
    nats_server.kill()
    started = time.monotonic()
    try:
        await projection.settle(timeout=2.0)
    except NatsUnavailable as err:
        assert "did not catch up" in str(err)
    else:
        raise AssertionError("settle must fail while the bus is away")
    assert time.monotonic() - started < 10
    nats_server.restart()


async def test_heartbeats_resume_after_an_outage_and_leaving_is_bounded(
    bus: Bus, nats_server: EmbeddedNats
) -> None:
    worker = await Bus.connect(nats_server.url, Producer(service="worker", instance="w1"))
    try:
        async with Heartbeat(worker, interval=0.2) as heartbeat:
            heartbeat.turned(7)
            await wait_for(lambda: beat_of(bus, "worker", "w1"), 10, "a first beat")
            first = await beat_of(bus, "worker", "w1")
            assert first is not None and first.position == 7 and first.incarnation
            await _outage(nats_server, 6.0)  # longer than the old loop survived
            await wait_for(lambda: bus.nc.is_connected and worker.nc.is_connected, 20, "reconnection")

            async def beating_again() -> bool:
                beat = await beat_of(bus, "worker", "w1")
                return beat is not None and beat.at > first.at + 5

            await wait_for(beating_again, 20, "beats after the outage")
            nats_server.kill()
            leaving = time.monotonic()
        assert time.monotonic() - leaving < 6, "leaving the heartbeat must not wait on the bus"
    finally:
        nats_server.restart()
        await worker.close(timeout=1.0)
