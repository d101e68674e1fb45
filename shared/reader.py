"""Follow the event stream by sequence with direct gets, woken by core NATS: a reader that creates nothing.

A live projection (shared/live.py) follows through an ordered consumer, which its user must be allowed to
create, and that grant lets a user rewrite any consumer of the stream (the CAVEAT in
infra/nats/accounts.conf). So the read-only user follows with direct gets instead: the reader keeps the
sequence of the last message it folded and asks the stream for the messages after it, a batch at a time
(a batched direct get: the messages, then an end-of-batch status), until none are left. Then it waits
for a message on a core subscription to the events, or for a second to pass, and asks again. What it
hears there only wakes it: core delivery may drop messages, so it never folds one. Its sequence is its
whole state, so after a NATS restart or a reconnect it asks again from there: nothing lost or doubled.

Direct gets are answered by the stream itself, outside the JetStream API's request queue, which every
service shares (a full queue drops every request in it). A stream created without direct gets (before
Bus.ensure_stream allowed them) is read through that API instead, one message per request: slower, and
never more than one request in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from shared.bus import STREAM, Bus, bus_away
from shared.errors import MalformedEvent
from shared.events import SUBJECT_PREFIX, Event, decode

__all__ = ["StreamReader"]

log = structlog.get_logger(__name__)

_SUBJECTS = f"{SUBJECT_PREFIX}.>"
_DIRECT_GET = f"$JS.API.DIRECT.GET.{STREAM}"
_BATCH = 1000  # messages per direct get
_BATCH_BYTES = 4 * 1024 * 1024  # and bytes per direct get: far below what a subscription buffers
_WAKE_EVERY_S = 1.0  # look for new events this often even if no core message said so
_SETTLE_S = 0.02  # a core message can arrive before the stream has stored it
_REPLY_TIMEOUT_S = 5.0

Stored = tuple[int, bytes]  # a message as stored: its stream sequence and its data


class StreamReader:
    """Folds every event of the stream, in stream order, into `on_event`; it needs only to read.

    Permissions it uses: subscribe to `alphalab.events.>` and `_INBOX.>`; publish to
    `$JS.API.DIRECT.GET.ALPHALAB_EVENTS`, and `$JS.API.STREAM.INFO.ALPHALAB_EVENTS` plus
    `$JS.API.STREAM.MSG.GET.ALPHALAB_EVENTS` for a stream without direct gets.
    Malformed messages are passed over, as by LiveProjection: their `event-rejected` records are events.
    """

    def __init__(self, bus: Bus, on_event: Callable[[Event], None]) -> None:
        self._bus = bus
        self._on_event = on_event
        self._stream_seq = 0  # stream sequence of the last message folded
        self._direct = True  # whether the stream answers direct gets (until it is seen not to)

    @property
    def stream_seq(self) -> int:
        """The stream sequence this reader has folded up to."""
        return self._stream_seq

    async def follow(self, stop: asyncio.Event) -> None:
        """Fold every event, those in the stream and those to come, until `stop` is set.

        The bus being away only delays it; any other error ends it."""
        woken = asyncio.Event()

        async def wake(msg: Msg) -> None:
            woken.set()

        subscription = await self._bus.nc.subscribe(_SUBJECTS, cb=wake)
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                woken.clear()
                try:
                    await self.catch_up()
                except Exception as err:
                    if not bus_away(err):
                        raise
                    log.warning("reader_interrupted_by_bus", error=repr(err), resume_after=self._stream_seq)
                waking = asyncio.create_task(woken.wait())
                await asyncio.wait(
                    {waking, stopping}, timeout=_WAKE_EVERY_S, return_when=asyncio.FIRST_COMPLETED
                )
                waking.cancel()
                if woken.is_set():
                    await asyncio.sleep(_SETTLE_S)
        finally:
            stopping.cancel()
            with contextlib.suppress(Exception):  # a closed connection has no subscription left anyway
                await subscription.unsubscribe()

    async def catch_up(self) -> None:
        """Fold every event now in the stream after the last one folded."""
        while True:
            stored, more = await self._fetch(self._stream_seq + 1)
            for seq, data in stored:
                self._fold(seq, data)
            if not stored or not more:
                return

    def _fold(self, seq: int, data: bytes) -> None:
        try:
            event = decode(data)
        except MalformedEvent:
            pass
        else:
            self._on_event(event)
        self._stream_seq = seq

    async def _fetch(self, start: int) -> tuple[list[Stored], bool]:
        """The next messages from sequence `start` on, and whether the stream held more after them."""
        if self._direct:
            batch = await self._direct_get(start)
            if batch is not None:
                return batch
            try:
                info = await self._bus.js.stream_info(STREAM)
            except NotFoundError:
                return [], False  # no stream yet: the lab's first service creates it
            if info.config.allow_direct:  # its responders are not up yet (the server is starting)
                raise nats.errors.NoRespondersError
            log.warning("stream_without_direct_gets", stream=STREAM, hint="reading one message at a time")
            self._direct = False
        return await self._get_one_by_one(start)

    async def _direct_get(self, start: int) -> tuple[list[Stored], bool] | None:
        """A batched direct get from `start`; None if nothing answers (no stream, or no direct gets).

        The server sends the messages to the request's inbox, then a status: 204 ends the batch (with
        how many messages were left after it), 404 says there is none at `start` or after.
        """
        stored: list[Stored] = []
        ended: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            headers = msg.headers or {}
            if "Nats-Sequence" in headers:  # a stored message (a publisher's headers may say "Status")
                stored.append((int(headers["Nats-Sequence"]), msg.data))
            elif not ended.done():  # a status: the end of the batch
                ended.set_result(msg)

        nc = self._bus.nc
        inbox = nc.new_inbox()
        subscription = await nc.subscribe(inbox, cb=collect)
        try:
            request = {"seq": start, "batch": _BATCH, "max_bytes": _BATCH_BYTES}
            await nc.publish(_DIRECT_GET, json.dumps(request).encode(), reply=inbox)
            try:
                end = await asyncio.wait_for(ended, _REPLY_TIMEOUT_S)
            except TimeoutError as err:
                raise nats.errors.TimeoutError from err
        finally:
            with contextlib.suppress(Exception):  # late replies to a closed inbox are dropped
                await subscription.unsubscribe()
        headers = end.headers or {}
        status = headers.get("Status", "")
        if status == "204":
            return stored, int(headers.get("Nats-Num-Pending", "0")) > 0
        if status == "404":
            return [], False
        if status == "503":
            return None
        raise RuntimeError(f"direct get from sequence {start}: {status} {headers.get('Description', '')}")

    async def _get_one_by_one(self, start: int) -> tuple[list[Stored], bool]:
        """Up to a batch of messages from `start`, one JetStream API request each, one at a time."""
        stored: list[Stored] = []
        seq = start
        while len(stored) < _BATCH:
            try:
                message = await self._bus.js.get_msg(STREAM, seq=seq, subject=_SUBJECTS, next=True)
            except NotFoundError:
                return stored, False
            stored.append((message.seq, message.data or b""))
            seq = message.seq + 1
        return stored, True
