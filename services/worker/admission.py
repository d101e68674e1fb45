"""A GPU worker's door on the GPU workers' durable: a proposal goes in only once it is placed on devices.

`Bus.consume` fetches through `Admission.fetch` as it would through the subscription itself, from as
many loops as the worker has slots. One loop at a time is in the door: it fetches only while the pool
has room, and places each GPU proposal before `consume` hands it to the handler, which takes its
placement (`placed`) and gives it back when the run ends (`release`). A proposal that does not fit
yet, but will once a run of this worker ends, is held in the door (kept in progress, nothing else
fetched meanwhile: the next run to start is that one, however large). One that could never fit here
(more GPUs, or more memory on one, than this worker has) is handed back with a delay for another GPU
worker, `BOUNCES` times; then the handler fails it, saying what it asked for and what this worker
has. Anything else (a CPU proposal, a closed one, a malformed message) goes through unplaced, for the
handler and `consume` to pass over or reject as on any durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.worker.resources import Gpu, Placement, Pool
from shared.bus import DELIVERY_BACKSTOP, bus_away
from shared.errors import MalformedEvent
from shared.events import Event, RunResources, decode

__all__ = ["BOUNCES", "BOUNCE_DELAY_S", "Admission"]

BOUNCES = 20  # deliveries of a proposal that fits no device here before it is failed
BOUNCE_DELAY_S = 30.0
HOLD_TICK_S = 5.0  # a held proposal is kept in progress this often (well within ack_wait)
log = structlog.get_logger(__name__)

Need = Callable[[Event], Awaitable[RunResources | None]]


class Admission:
    def __init__(
        self, subscription: JetStreamContext.PullSubscription, pool: Pool, need: Need, stop: asyncio.Event
    ) -> None:
        self._subscription, self._pool, self._need, self._stop = subscription, pool, need, stop
        self._door = asyncio.Lock()
        self._released = asyncio.Event()
        self._placed: dict[int, Placement] = {}

    async def fetch(self, batch: int = 1, timeout: float = 0.5) -> list[Msg]:
        """At most one message, placed if it is a GPU run; none within about `timeout` if another loop
        is in the door or the pool is full (`consume` then turns its loop and asks again)."""
        try:
            async with asyncio.timeout(timeout):
                await self._door.acquire()
        except TimeoutError:
            return []
        try:
            if not self._pool.has_room():
                self._released.clear()
                await self._wait(timeout)
                if not self._pool.has_room():
                    return []
            msgs = await self._subscription.fetch(1, timeout=timeout)
            admitted = [await self._admit(msg) for msg in msgs]
            return [msg for msg in admitted if msg is not None]
        finally:
            self._door.release()

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        return self._pool.gpus

    def placed(self, stream_seq: int) -> Placement | None:
        """The placement of the message at `stream_seq`, handed to its handler (once)."""
        return self._placed.pop(stream_seq, None)

    def release(self, placement: Placement) -> None:
        self._pool.release(placement)
        self._released.set()

    async def _admit(self, msg: Msg) -> Msg | None:
        """`msg` placed (or not a GPU run: as it is), or None if it was handed back."""
        try:
            event = decode(msg.data)
        except MalformedEvent:
            return msg  # consume dead-letters it
        meta = msg.metadata
        if meta.num_delivered >= DELIVERY_BACKSTOP:
            return msg  # consume dead-letters it, unrun
        try:
            need = await self._need(event)
        except Exception as err:
            if bus_away(err):
                raise  # consume waits for the bus; the message comes back after ack_wait
            log.warning("gpu_need_unknown", event_id=event.event_id, error=repr(err))
            return msg  # the handler meets the same error, inside consume's error boundary
        if need is None or need.gpus == 0:
            return msg
        while True:
            self._released.clear()
            placement = self._pool.place(need)
            if placement is not None:
                self._placed[meta.sequence.stream] = placement
                log.info("gpu_run_admitted", event_id=event.event_id, devices=placement.devices)
                return msg
            if not self._pool.fits(need):
                return await self._bounce(msg, event, need)
            if self._stop.is_set():
                await msg.nak()  # for another worker, now
                return None
            if not await self._wait(HOLD_TICK_S):
                await _in_progress(msg)
                if await self._need(event) is None:  # cancelled meanwhile: the handler passes over it
                    return msg

    async def _bounce(self, msg: Msg, event: Event, need: RunResources) -> Msg | None:
        """A proposal no device here can take: back to the durable for another worker, or, after
        `BOUNCES` deliveries, on to the handler, which fails it."""
        delivered = msg.metadata.num_delivered
        log.warning(
            "gpu_run_does_not_fit",
            event_id=event.event_id,
            gpus=need.gpus,
            gpu_memory_mb=need.gpu_memory_mb,
            delivered=delivered,
        )
        if delivered >= BOUNCES:
            return msg
        await msg.nak(delay=BOUNCE_DELAY_S)
        return None

    async def _wait(self, seconds: float) -> bool:
        """Wait until a run releases its devices or the worker stops; False after `seconds` without."""
        released = asyncio.ensure_future(self._released.wait())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({released, stopping}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            released.cancel()
            stopping.cancel()
        return bool(done)


async def _in_progress(msg: Msg) -> None:
    """Best effort, as `Delivery.in_progress`: while the bus is away nobody else gets it anyway."""
    try:
        await msg.in_progress()
    except Exception as err:
        if not bus_away(err):
            raise
        log.warning("in_progress_failed", error=repr(err))
