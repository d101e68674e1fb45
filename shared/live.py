"""Projections fed live from the JetStream stream: the same fold as replay, applied as events arrive."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from shared.bus import STREAM, Bus, bus_away
from shared.domain import Domain
from shared.errors import ConfigError, MalformedEvent, NatsUnavailable
from shared.events import SUBJECT_PREFIX, Event, Payload, decode
from shared.heartbeat import Heartbeat
from shared.inputs import Inputs
from shared.projections import CampaignView, Lab, evolve
from shared.snapshots import SnapshotStore

__all__ = ["Decision", "LiveProjection", "fold_stream", "follow", "publish_decisions", "running_campaigns"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """An event a service decided to publish; its `key` names what it is about and becomes its id
    (`<campaign>-<key>`), so deciding the same thing again after a crash is deduplicated."""

    key: str
    payload: Payload


class LiveProjection:
    """Follows the stream from its first event (of one campaign, or all) and folds each one into `lab`.

    It follows through an ordered consumer, which lives only in the server's memory: a NATS restart
    loses it. So the projection keeps the stream sequence it has folded up to and, when its consumer is
    gone, subscribes again from just after it; a message it has already folded is passed over.
    Malformed messages are passed over too: their `event-rejected` records are events of their own.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        campaign_id: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        """`on_event` is called with each event folded, in order: for a reader that keeps the log too.
        With `snapshots`, it starts from the latest snapshot of the whole lab (if there is a good one)
        and folds only the events after it; `on_event` then sees only those."""
        assert snapshots is None or campaign_id is None, "a snapshot is of the whole lab"
        self.lab = Lab()
        self._snapshots = snapshots
        self._on_event = on_event
        self._bus = bus
        self._subject = f"{SUBJECT_PREFIX}.{campaign_id or '*'}.>"
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._generation = 0  # which subscription is current; a replaced one's late messages are stale
        self._stream_seq = 0  # stream sequence of the last message folded
        self.started_from = 0  # the stream sequence of the snapshot it started from (0: none)
        self._folded = 0  # consumer sequence (in the current subscription) of the last message folded
        self.folded = asyncio.Event()  # set whenever an event is folded; whoever waits on it clears it

    @property
    def stream_seq(self) -> int:
        """The stream sequence this projection has folded up to: the position a heartbeat reports."""
        return self._stream_seq

    async def start(self) -> None:
        if self._snapshots is not None and (snapshot := await self._snapshots.load()) is not None:
            self.lab, self._stream_seq = snapshot.lab, snapshot.stream_seq
            self.started_from = snapshot.stream_seq
            log.info("projection_from_snapshot", stream_seq=snapshot.stream_seq, events=snapshot.lab.position)
        await self._subscribe()

    async def _subscribe(self) -> None:
        await self._unsubscribe()
        self._generation += 1
        self._folded = 0
        self._subscription = await self._bus.js.subscribe(
            self._subject,
            stream=STREAM,
            cb=functools.partial(self._fold, self._generation),
            ordered_consumer=True,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._stream_seq + 1
            ),
        )

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # a consumer the server lost cannot be deleted twice
                await subscription.unsubscribe()

    async def _fold(self, generation: int, msg: Msg) -> None:
        sequence = msg.metadata.sequence
        if generation != self._generation or sequence.stream <= self._stream_seq:
            return
        with contextlib.suppress(MalformedEvent):
            event = decode(msg.data)
            self.lab = evolve(self.lab, event)
            if self._on_event is not None:
                self._on_event(event)
        self._stream_seq, self._folded = sequence.stream, sequence.consumer
        self.folded.set()

    async def caught_up(self) -> bool:
        """True when every event now in the stream that this projection follows has been folded.

        False while the bus is away; a consumer the server lost is replaced (and this returns False).
        """
        assert self._generation, "start() first"
        try:
            if self._subscription is None:
                await self._subscribe()
            assert self._subscription is not None
            info = await self._subscription.consumer_info()
        except NotFoundError:
            log.warning("projection_consumer_lost", resume_after=self._stream_seq)
            await self._resubscribe_quietly()
            return False
        except Exception as err:
            if not bus_away(err):
                raise
            return False
        delivered = info.delivered.consumer_seq if info.delivered else 0
        return info.num_pending == 0 and self._folded >= delivered

    async def _resubscribe_quietly(self) -> None:
        try:
            await self._subscribe()
        except Exception as err:
            if not bus_away(err):
                raise
            self._subscription = None  # the next caught_up() tries again

    async def settle(self, timeout: float = 30.0, *, through: int = 0) -> None:
        """Wait until caught up and, with `through` (the stream sequence a publish was acked at), until
        that event is folded: so that a decision sees the events it just published. The consumer's own
        count alone can say "nothing pending" before it has seen an event a cluster already acked.

        Raises NatsUnavailable if that takes longer than `timeout`: the bus is away (or far behind)."""
        try:
            async with asyncio.timeout(timeout):
                while not (await self.caught_up() and self._stream_seq >= through):
                    await asyncio.sleep(0.02)
        except TimeoutError as err:
            raise NatsUnavailable(f"the projection did not catch up in {timeout:g} s") from err

    async def stop(self) -> None:
        await self._unsubscribe()


async def follow(
    bus: Bus,
    stop: asyncio.Event,
    every: float,
    step: Callable[[LiveProjection], Awaitable[None]],
    *,
    on_events: bool = False,
) -> None:
    """A service's main loop: keep a projection of the whole stream and, while it is caught up, call
    `step` on it every `every` seconds, with this instance's heartbeat reporting each turn. With
    `on_events`, also as soon as new events are folded (after `COALESCE_S`, so that a burst is one
    turn): a decision waits for no clock, and an idle service does not turn more than it must.

    A step interrupted by the bus being away is tried again on a later turn; any other error ends the
    service (crash-only: it is restarted and rebuilds its projection, from the latest snapshot)."""
    projection = LiveProjection(bus, snapshots=SnapshotStore(bus))
    await projection.start()
    try:
        async with Heartbeat(bus) as heartbeat:
            while not stop.is_set():
                projection.folded.clear()
                try:
                    if await projection.caught_up():
                        await step(projection)
                except Exception as err:
                    if not bus_away(err):
                        raise
                    log.warning("step_interrupted_by_bus", error=repr(err))
                heartbeat.turned(projection.stream_seq)
                await _next_turn(stop, projection.folded if on_events else None, every)
    finally:
        await projection.stop()


COALESCE_S = 0.02


async def _next_turn(stop: asyncio.Event, folded: asyncio.Event | None, every: float) -> None:
    """Wait `every` seconds, or until `stop`, or (if given) until `folded` is set and `COALESCE_S` more."""
    waits = [asyncio.ensure_future(stop.wait())]
    if folded is not None:
        waits.append(asyncio.ensure_future(folded.wait()))
    try:
        await asyncio.wait(waits, timeout=every, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    if folded is not None and folded.is_set() and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), COALESCE_S)


async def running_campaigns(lab: Lab, inputs: Inputs) -> list[tuple[CampaignView, Domain]]:
    """The campaigns still running, each with its domain adapter (resolved once per process). One whose
    adapter cannot be had is passed over (Inputs logs why): the explorer fails it, ending the campaign."""
    running = []
    for view in lab.campaigns.values():
        if view.status != "running" or not view.domain:
            continue
        try:
            running.append((view, (await inputs.resolve(view)).domain))
        except ConfigError:
            continue
    return running


async def publish_decisions(
    bus: Bus,
    projection: LiveProjection,
    campaign_id: str,
    decisions: list[Decision],
    *,
    caused_by: str | None = None,
) -> None:
    """Publish decisions, then wait until the projection includes them, so the next decision sees them.

    `caused_by` is the id of the event they follow from, even one not published yet (an agent turn
    records itself after its decisions: see services/strategist/service.py)."""
    producer = bus.producer
    events = [
        Event.new(d.payload, campaign_id=campaign_id, producer=producer, event_id=f"{campaign_id}-{d.key}")
        for d in decisions
    ]
    if caused_by is not None:
        events = [
            e.model_copy(update={"causation_id": caused_by, "correlation_id": caused_by}) for e in events
        ]
    acks = await bus.publish_many(events)
    await projection.settle(through=max((ack.seq for ack in acks), default=0))


async def fold_stream(bus: Bus, *, campaign_id: str | None = None, timeout: float = 30.0) -> Lab:
    """Every event now in the stream (of one campaign, or all), folded in stream order."""
    projection = LiveProjection(bus, campaign_id=campaign_id)
    await projection.start()
    try:
        await projection.settle(timeout)
    finally:
        await projection.stop()
    return projection.lab
