"""Liveness and progress: each service instance refreshes a key in a KV bucket whose entries expire.

A key that has expired means the instance went silent (crashed, hung, stopped, partitioned away). A
key that is fresh proves only that some loop of the process runs, so every beat also carries the
instance's proof of progress: when its main loop last turned (`turned_at`) and the stream position it
has processed. An instance that beats but whose loop stopped turning is stuck: whoever tends the
processes restarts it. Each process is a new `incarnation`, so a restart shows even under the same
name. The Supervisor reads the bucket to find silent workers; the Strategist counts live workers to keep
each one busy. Heartbeats are not events: they would flood the log with nothing worth auditing.

A worker's beat also says what it has and holds (`resources`: its CPUs, memory, and each GPU's memory
and what its runs left of it, see services/worker/resources.py) and every run it is working on
(`runs`; `busy_with` is the first of them, as it was the only one before workers ran several). Beats
from before these fields read with their defaults, and readers from before pass over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import structlog
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from shared.bus import Bus

__all__ = ["HEARTBEAT_TTL_S", "INCARNATION", "STUCK_AFTER_S", "Beat", "Heartbeat", "alive", "beat_of"]

BUCKET = "alphalab-heartbeats"
HEARTBEAT_TTL_S = 10.0
STUCK_AFTER_S = 90.0  # a main loop that has not turned for this long is stuck (handlers tick within ack_wait)
INCARNATION = f"{os.getpid()}-{secrets.token_hex(4)}"  # this process; a restart is a new one
_EXIT_WAIT_S = 2.0
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Beat:
    service: str
    instance: str
    at: float
    busy_with: str | None = None  # the run id an instance is working on, if any
    incarnation: str = ""
    started_at: float = 0.0
    turned_at: float = 0.0  # when the main loop last turned (or a long handler reported progress)
    position: int = 0  # the stream sequence the instance has processed up to
    runs: tuple[str, ...] = ()  # every run id it is working on
    resources: dict[str, Any] | None = None  # a worker's CPUs, memory and GPUs (see the module docstring)

    @classmethod
    def parse(cls, raw: bytes) -> Beat:
        document = json.loads(raw)
        known = {f.name: document[f.name] for f in fields(cls) if f.name in document}
        if isinstance(known.get("runs"), list):
            known["runs"] = tuple(known["runs"])
        return cls(**known)

    def stuck(self, now: float, after: float = STUCK_AFTER_S) -> bool:
        """Beating, but its main loop has not turned for `after` seconds."""
        return now - self.turned_at > after


async def _bucket(bus: Bus) -> KeyValue:
    try:
        return await bus.js.key_value(BUCKET)
    except BucketNotFoundError:
        return await bus.js.create_key_value(bucket=BUCKET, ttl=HEARTBEAT_TTL_S, history=1)


class Heartbeat:
    """Refreshes this instance's key every `interval` seconds while running.

    The loop outlives any outage: a failed beat is logged and the next one tried. Leaving the context
    stops the loop within a bounded time, whatever the bus is doing.
    """

    def __init__(
        self, bus: Bus, interval: float = 2.0, resources: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self._bus = bus
        self._interval = interval
        self._resources = resources
        self.runs: list[str] = []  # the runs this instance is working on, oldest first
        self._started_at = self._turned_at = time.time()
        self._position = 0
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def busy_with(self) -> str | None:
        return self.runs[0] if self.runs else None

    @property
    def key(self) -> str:
        return f"{self._bus.producer.service}.{self._bus.producer.instance}"

    def turned(self, position: int | None = None) -> None:
        """The main loop made a turn (having processed the stream up to `position`)."""
        self._turned_at = time.time()
        if position is not None:
            self._position = position

    async def beat(self) -> None:
        producer = self._bus.producer
        beat = Beat(
            service=producer.service,
            instance=producer.instance,
            at=time.time(),
            busy_with=self.busy_with,
            incarnation=INCARNATION,
            started_at=self._started_at,
            turned_at=self._turned_at,
            position=self._position,
            runs=tuple(self.runs),
            resources=self._resources() if self._resources is not None else None,
        )
        await (await _bucket(self._bus)).put(self.key, json.dumps(asdict(beat)).encode())

    async def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                async with asyncio.timeout(self._interval + 5.0):
                    await self.beat()
            except Exception as err:  # an outage of any length: keep trying
                log.warning("heartbeat_failed", error=repr(err))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._interval)

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=_EXIT_WAIT_S)
        with contextlib.suppress(Exception):  # best effort: the TTL removes the key anyway
            async with asyncio.timeout(_EXIT_WAIT_S):
                await (await _bucket(self._bus)).delete(self.key)


async def beat_of(bus: Bus, service: str, instance: str) -> Beat | None:
    """The latest heartbeat of one instance, or None if it has expired (a direct read, no listing)."""
    kv = await _bucket(bus)
    try:
        entry = await kv.get(f"{service}.{instance}")
    except KeyNotFoundError:
        return None
    return Beat.parse(entry.value) if entry.value else None


async def alive(bus: Bus, service: str | None = None) -> list[Beat]:
    """The instances whose heartbeat has not expired, optionally of one service.

    The keys are the bucket stream's subjects (one stream-info request), not `KeyValue.keys()`: that
    opens a consumer per call, which the server keeps: services that ask every turn had left 1,000 of
    them within minutes (bench/scale.py), and the server then refused more ("maximum consumers limit
    reached"), crashing them."""
    kv = await _bucket(bus)
    prefix = f"$KV.{BUCKET}."
    subjects = f"{prefix}{service}.>" if service else f"{prefix}>"
    try:
        info = await bus.js.stream_info(f"KV_{BUCKET}", subjects_filter=subjects)
    except TimeoutError:  # a listing that timed out under load
        return []
    beats = []
    for subject in info.state.subjects or {}:
        with contextlib.suppress(Exception):  # expired or deleted between listing and reading
            entry = await kv.get(subject.removeprefix(prefix))
            if entry.value:
                beats.append(Beat.parse(entry.value))
    return beats
