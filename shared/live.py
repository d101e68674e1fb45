"""Projections fed live from the JetStream stream: the same fold as replay, applied as events arrive."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from shared.bus import STREAM, Bus
from shared.domain import Domain, load_domain
from shared.errors import MalformedEvent
from shared.events import SUBJECT_PREFIX, Event, Payload, decode
from shared.heartbeat import Heartbeat
from shared.projections import CampaignView, Lab, evolve

__all__ = ["Decision", "LiveProjection", "fold_stream", "follow", "publish_decisions", "running_campaigns"]


@dataclass(frozen=True, slots=True)
class Decision:
    """An event a service decided to publish; its `key` names what it is about and becomes its id
    (`<campaign>-<key>`), so deciding the same thing again after a crash is deduplicated."""

    key: str
    payload: Payload


class LiveProjection:
    """Follows the stream from its first event (of one campaign, or all) and folds each one into `lab`.

    Malformed messages are passed over: their `event-rejected` records are events of their own.
    """

    def __init__(self, bus: Bus, *, campaign_id: str | None = None) -> None:
        self.lab = Lab()
        self._bus = bus
        self._subject = f"{SUBJECT_PREFIX}.{campaign_id or '*'}.>"
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._folded = 0  # consumer sequence of the last message folded

    async def start(self) -> None:
        self._subscription = await self._bus.js.subscribe(
            self._subject,
            stream=STREAM,
            cb=self._fold,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.ALL,
        )

    async def _fold(self, msg: Msg) -> None:
        with contextlib.suppress(MalformedEvent):
            self.lab = evolve(self.lab, decode(msg.data))
        self._folded = msg.metadata.sequence.consumer

    async def caught_up(self) -> bool:
        """True when every event now in the stream that this projection follows has been folded."""
        assert self._subscription is not None, "start() first"
        info = await self._subscription.consumer_info()
        delivered = info.delivered.consumer_seq if info.delivered else 0
        return info.num_pending == 0 and self._folded >= delivered

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until caught up, e.g. so that a decision sees the events it just published."""
        async with asyncio.timeout(timeout):
            while not await self.caught_up():
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None


async def follow(
    bus: Bus, stop: asyncio.Event, every: float, step: Callable[[LiveProjection], Awaitable[None]]
) -> None:
    """A service's main loop: keep a projection of the whole stream and, while it is caught up, call
    `step` on it every `every` seconds, with this instance's heartbeat going."""
    projection = LiveProjection(bus)
    await projection.start()
    try:
        async with Heartbeat(bus):
            while not stop.is_set():
                if await projection.caught_up():
                    await step(projection)
                await asyncio.sleep(every)
    finally:
        await projection.stop()


def running_campaigns(lab: Lab) -> list[tuple[CampaignView, Domain]]:
    """The campaigns still running, each with its domain adapter (read once per process, not per tick)."""
    return [
        (view, _adapter(view.domain))
        for view in lab.campaigns.values()
        if view.status == "running" and view.domain
    ]


@functools.cache
def _adapter(reference: str) -> Domain:
    return load_domain(reference)


async def publish_decisions(
    bus: Bus, projection: LiveProjection, campaign_id: str, decisions: list[Decision]
) -> None:
    """Publish decisions, then wait until the projection includes them, so the next decision sees them."""
    producer = bus.producer
    events = [
        Event.new(d.payload, campaign_id=campaign_id, producer=producer, event_id=f"{campaign_id}-{d.key}")
        for d in decisions
    ]
    await bus.publish_many(events)
    await projection.settle()


async def fold_stream(bus: Bus, *, campaign_id: str | None = None, timeout: float = 30.0) -> Lab:
    """Every event now in the stream (of one campaign, or all), folded in stream order."""
    projection = LiveProjection(bus, campaign_id=campaign_id)
    await projection.start()
    try:
        await projection.settle(timeout)
    finally:
        await projection.stop()
    return projection.lab
