"""The JetStream bus: one stream of events, idempotent publishing, durable consumers, dead letters.

Publishing sets `Nats-Msg-Id` to the event id, so JetStream drops a republished event inside its
duplicate window (the ledger's insert-or-ignore covers the rest). Consuming has one error boundary:
a message that is not a valid event becomes an `event-rejected` record (its bytes kept as a blob) and
is acked; a handler error naks with a back-off until `max_deliver` failures, then dead-letters; success
acks only after the handler returned, i.e. after its effect is durable.

The bus being away is not a handler failure. A handler interrupted by an outage (a NATS error, or any
error while disconnected) leaves its message for redelivery without spending its budget, and the
consuming loop waits for the server instead of ending. Handler failures are therefore counted by the
consumer itself, per message, not read off JetStream's delivery count (which every redelivery after an
outage or a crash raises); JetStream's own `max_deliver` stays as a generous backstop, for a message that
kills its handler's process every time: its last delivery is dead-lettered without running it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError, ServiceUnavailableError

from shared.blobs import BlobStore
from shared.errors import MalformedEvent, NatsUnavailable, PermissionDenied
from shared.events import SUBJECT_PREFIX, Event, EventRejected, Producer, decode, encode
from shared.secrets import redact_bytes

__all__ = ["Bus", "Delivery", "Handler", "BatchHandler", "STREAM", "bus_away", "stream_config"]

STREAM = "ALPHALAB_EVENTS"
DUPLICATE_WINDOW_S = 120.0
DELIVERY_BACKSTOP = 50  # JetStream's max_deliver for work consumers: deliveries, whatever ended them
_REFUSED_PUBLISH = re.compile(r'permissions violation for publish to "?([^"\s\']+)', re.IGNORECASE)
_BUS_AWAY = (
    NatsUnavailable,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.FlushTimeoutError,
    ServiceUnavailableError,
)
_CAMPAIGN = re.compile(r"[A-Za-z0-9_-]{1,64}")
log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Where a consumed event sits in the stream, how often it has been delivered, and how often a
    handler of this consumer has failed on it before (outages and crashes are not failures)."""

    stream_seq: int
    num_delivered: int
    msg: Msg
    failures: int = 0

    async def in_progress(self) -> None:
        """Tell JetStream a long handler is still working, so the message is not redelivered.

        Best effort: while the bus is away the message cannot be redelivered to anyone anyway."""
        try:
            await self.msg.in_progress()
        except Exception as err:
            if not bus_away(err):
                raise
            log.warning("in_progress_failed", error=repr(err))


Handler = Callable[[Event, Delivery], Awaitable[None]]
BatchHandler = Callable[[Sequence[tuple[Event, Delivery]]], Awaitable[None]]


class Bus:
    def __init__(self, nc: Client, producer: Producer) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.producer = producer
        self.blobs = BlobStore(self.js)
        self._failures: dict[tuple[str, int], int] = {}  # (consumer, stream seq) -> handler failures
        self._refusals: dict[str, asyncio.Future[None]] = {}  # subject -> set when the server refuses it

    @classmethod
    async def connect(
        cls, url: str, producer: Producer, *, connect_timeout: float = 5.0, ensure_stream: bool = True
    ) -> Bus:
        """Connect (reconnecting forever after the first success) and make sure the stream exists.

        A reader passes `ensure_stream=False`: it may not be allowed to create the stream, and waits
        for the lab's services to do so."""
        nc = Client()

        async def disconnected() -> None:
            if not nc.is_closed:  # a close we asked for is not worth a warning
                log.warning("nats_disconnected")

        refused: list[Bus] = []  # the bus, once made: a refused publish is told to it

        async def error(err: Exception) -> None:
            # Before the first connection the caller gets one clear error instead of one per attempt.
            (log.warning if nc.is_connected else log.debug)("nats_error", error=repr(err))
            if refused and (found := _REFUSED_PUBLISH.search(str(err))):
                refused[0]._refused(found.group(1))

        try:
            # nats-py retries the first connection as often as later reconnections (forever here),
            # so the deadline for the first one is ours to set.
            async with asyncio.timeout(connect_timeout):
                await nc.connect(
                    [server.strip() for server in url.split(",")],  # a cluster: every node's URL
                    name=f"{producer.service}/{producer.instance}",
                    connect_timeout=connect_timeout,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=error,
                    disconnected_cb=disconnected,
                    reconnected_cb=_log_reconnect,
                )
        except Exception as err:  # nats raises a mix of OSError, TimeoutError and NoServersError
            await nc.close()
            reason = f"no answer within {connect_timeout:g} s" if isinstance(err, TimeoutError) else str(err)
            raise NatsUnavailable(f"cannot reach NATS at {url}: {reason or type(err).__name__}") from err
        bus = cls(nc, producer)
        refused.append(bus)
        if ensure_stream:
            await bus.ensure_stream()
        return bus

    async def ensure_stream(self) -> None:
        """Create the event stream if it does not exist yet.

        An existing stream is left as it is: its operator may have replicated it across a cluster
        (or this user may not be allowed to change it), and every service connecting must not undo that.
        A new stream answers direct gets: shared/reader.py follows it with them, creating no consumer.
        """
        try:
            await self.js.stream_info(STREAM)
        except NotFoundError:
            await self.js.add_stream(stream_config())

    async def publish(self, event: Event) -> api.PubAck:
        """Publish and wait for JetStream's ack; `ack.duplicate` is True if it was already stored."""
        data = redact_bytes(encode(event))
        return await self.js.publish(event.subject, data, headers={"Nats-Msg-Id": event.event_id})

    async def publish_allowed(self, event: Event) -> api.PubAck:
        """`publish`, for a user who may not be allowed to: PermissionDenied as soon as the server
        refuses the subject, instead of waiting out the ack's timeout (an operator's action)."""
        key = event.subject.lower()  # nats-py hands the server's error over lowercased
        refusal = self._refusals.setdefault(key, asyncio.get_running_loop().create_future())
        acked = asyncio.ensure_future(self.publish(event))
        try:
            await asyncio.wait({acked, refusal}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._refusals.get(key) is refusal and not refusal.done():
                del self._refusals[key]
        if acked.done():
            return acked.result()
        acked.cancel()
        user = self.nc.connected_url.username if self.nc.connected_url else None
        raise PermissionDenied(f"the NATS user {user or '(anonymous)'} may not publish {event.subject}")

    def _refused(self, subject: str) -> None:
        refusal = self._refusals.pop(subject.lower(), None)
        if refusal is not None and not refusal.done():
            refusal.set_result(None)

    async def publish_many(self, events: Sequence[Event]) -> list[api.PubAck]:
        """Publish without waiting between events, then wait for every ack (in order)."""
        futures = [
            await self.js.publish_async(
                e.subject, redact_bytes(encode(e)), headers={"Nats-Msg-Id": e.event_id}
            )
            for e in events
        ]
        return list(await asyncio.gather(*futures))

    async def reject(self, msg: Msg, reason: str, event: Event | None = None) -> None:
        """Dead-letter `msg`: keep its bytes as a blob and publish an `event-rejected` record.

        `event` is the message decoded, if it was a valid event whose handling failed for good: the
        record then names it and belongs to its campaign, so projections can mark what it was about.
        The record's id derives from the stream position, so every consumer that rejects the same
        message (and every redelivery) produces one record, not many.
        """
        seq = _stream_seq(msg)
        digest = await self.blobs.put(msg.data)
        rejection = EventRejected(
            reason=reason[:2000],
            subject=msg.subject,
            stream_seq=seq,
            size=len(msg.data),
            sha256=digest,
            preview=msg.data[:512].decode("utf-8", errors="replace"),
            rejected_by=self.producer.service,
            event_id=event.event_id if event is not None else None,
        )
        key = f"{seq}" if seq is not None else digest
        event_id = "rejected-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        campaign = event.campaign_id if event is not None else _campaign_of(msg.subject)
        await self.publish(
            Event.new(rejection, campaign_id=campaign, producer=self.producer, event_id=event_id)
        )
        log.warning("event_rejected", reason=reason, subject=msg.subject, stream_seq=seq, blob=digest)

    async def subscription(
        self,
        durable: str,
        *,
        subject: str = f"{SUBJECT_PREFIX}.>",
        max_deliver: int = DELIVERY_BACKSTOP,
        ack_wait: float = 30.0,
        ack_all: bool = False,
        max_ack_pending: int = 1000,
        start_after: int | None = None,
    ) -> JetStreamContext.PullSubscription:
        """A durable pull consumer; consumers with the same name share (split) the work.

        `max_deliver` is JetStream's limit on deliveries of any kind; handler failures are limited by
        `consume(max_deliver=...)`.

        `start_after` recreates the consumer to deliver from that stream sequence on: for a reader
        that keeps its own position durably (the ledger), which then owns exactly-once itself.
        """
        config = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.ALL if ack_all else api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            max_deliver=max_deliver,
            ack_wait=ack_wait,
            max_ack_pending=max_ack_pending,
            filter_subject=subject,
        )
        if start_after is not None:
            config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = start_after + 1
            with contextlib.suppress(NotFoundError):
                await self.js.delete_consumer(STREAM, durable)
        return await self.js.pull_subscribe(subject, durable=durable, stream=STREAM, config=config)

    async def consume(
        self,
        subscription: JetStreamContext.PullSubscription,
        handler: Handler,
        stop: asyncio.Event,
        *,
        max_deliver: int = 5,
        batch: int = 16,
        on_turn: Callable[[], None] | None = None,
    ) -> None:
        """Feed each event to `handler` until `stop` is set; acks only after the handler returns.

        `max_deliver` is how many times a handler may fail on one message before it is dead-lettered.
        `on_turn` is called on every turn of the loop (a heartbeat's proof of progress). A handler still
        working when `stop` is set is cancelled, its message left unacked for the next consumer:
        handlers are idempotent, and a long one (a Phase 2 harness test) must not hold up a shutdown.
        """
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if on_turn is not None:
                    on_turn()
                for msg in await self._fetch(subscription, batch):
                    delivery = asyncio.create_task(self._deliver(msg, handler, max_deliver))
                    await asyncio.wait({delivery, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not delivery.done():
                        delivery.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await delivery
                        return
                    delivery.result()
        finally:
            stopping.cancel()

    async def consume_batches(
        self,
        subscription: JetStreamContext.PullSubscription,
        handler: BatchHandler,
        stop: asyncio.Event,
        *,
        batch: int = 1000,
    ) -> None:
        """Feed events to `handler` a batch at a time (for an ack-all consumer): one ack per batch.

        A handler error propagates and ends the consumer: a batch reader that owns its position
        restarts from what it committed, which keeps its log in stream order.
        """
        while not stop.is_set():
            msgs = await self._fetch(subscription, batch)
            if not msgs:
                continue
            events: list[tuple[Event, Delivery]] = []
            for msg in msgs:
                try:
                    events.append((decode(msg.data), _delivery(msg)))
                except MalformedEvent as err:
                    await self.reject(msg, str(err))
            if events:
                await handler(events)
            await msgs[-1].ack()

    async def _deliver(self, msg: Msg, handler: Handler, max_deliver: int) -> None:
        try:
            event = decode(msg.data)
        except MalformedEvent as err:
            await self.reject(msg, str(err))
            await msg.ack()
            return
        delivery = dataclasses.replace(_delivery(msg), failures=self._failures.get(_failure_key(msg), 0))
        with structlog.contextvars.bound_contextvars(
            campaign_id=event.campaign_id,
            event_id=event.event_id,
            event_type=event.type,
            delivery=delivery.num_delivered,
        ):
            if delivery.num_delivered >= DELIVERY_BACKSTOP:
                reason = f"delivered {delivery.num_delivered} times without an outcome"
                await self._dead_letter(msg, event, reason)
                return
            try:
                await handler(event, delivery)
            except Exception as err:
                await self._handler_failed(msg, event, delivery, err, max_deliver)
                return
            self._failures.pop(_failure_key(msg), None)
            await msg.ack()

    async def _handler_failed(
        self, msg: Msg, event: Event, delivery: Delivery, err: Exception, max_deliver: int
    ) -> None:
        """Count a real failure (and dead-letter at `max_deliver`); an interruption by the bus is not one."""
        if bus_away(err) or not self.nc.is_connected:
            log.warning("handler_interrupted_by_bus", error=repr(err))
            with contextlib.suppress(Exception):  # if the bus is still away, ack_wait redelivers it
                await msg.nak(delay=1.0)
            return
        log.exception("handler_failed")
        key = _failure_key(msg)
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        if failures >= max_deliver:
            await self._dead_letter(msg, event, f"handler failed {failures} times: {err!r}")
            self._failures.pop(key, None)
        else:
            await msg.nak(delay=min(30.0, 0.5 * 2**failures))

    async def _dead_letter(self, msg: Msg, event: Event, reason: str) -> None:
        await self.reject(msg, reason, event)
        await msg.term()

    async def _fetch(self, subscription: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
        """The next messages, or none after half a second; while the bus is away, none after a pause."""
        try:
            return await subscription.fetch(batch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except Exception as err:
            if not bus_away(err) and self.nc.is_connected:
                raise
            log.warning("fetch_interrupted_by_bus", error=repr(err))
            await asyncio.sleep(0.5)
            return []

    async def consumer_caught_up(self, durable: str) -> bool:
        """True when the durable consumer `durable` has acked every message now in the stream."""
        stream = await self.js.stream_info(STREAM)
        try:
            info = await self.js.consumer_info(STREAM, durable)
        except NotFoundError:
            return False
        return info.ack_floor.stream_seq >= stream.state.last_seq and info.num_pending == 0

    async def close(self, timeout: float = 5.0) -> None:
        """Flush what was published and acked, then close, within about `timeout` seconds however the
        server is doing. (Draining would wait on pull subscriptions' buffered messages, which we never
        handle once stopping: they get redelivered.)"""
        if self.nc.is_closed:
            return
        try:
            await self.nc.flush(timeout=timeout)
        except (TimeoutError, nats.errors.Error) as err:
            log.warning("flush_failed", error=repr(err))
        try:
            async with asyncio.timeout(timeout):
                await self.nc.close()
        except (TimeoutError, OSError, nats.errors.Error) as err:  # the connection was lost meanwhile
            log.warning("close_failed", error=repr(err))


def stream_config(replicas: int = 1) -> api.StreamConfig:
    """The event stream as the lab creates it (infra/k8s/bootstrap.py: with a cluster's replicas)."""
    return api.StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msg_size=-1,
        allow_direct=True,
        num_replicas=replicas,
    )


def bus_away(err: BaseException) -> bool:
    """True if `err` (or what caused it) says the NATS server is unreachable for now, not that the
    work itself failed."""
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 8:
        if isinstance(current, _BUS_AWAY):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def _failure_key(msg: Msg) -> tuple[str, int]:
    meta = msg.metadata
    return meta.consumer or "", meta.sequence.stream


def _delivery(msg: Msg) -> Delivery:
    meta = msg.metadata
    return Delivery(stream_seq=meta.sequence.stream, num_delivered=meta.num_delivered, msg=msg)


def _stream_seq(msg: Msg) -> int | None:
    try:
        return msg.metadata.sequence.stream
    except Exception:  # a message that did not come from a JetStream consumer has no metadata
        return None


def _campaign_of(subject: str) -> str:
    """The campaign a rejected message was published under, read from its subject if well formed."""
    parts = subject.split(".")
    candidate = parts[2] if len(parts) > 3 else ""
    return candidate if _CAMPAIGN.fullmatch(candidate) else "unknown"


async def _log_reconnect() -> None:
    log.info("nats_reconnected")
