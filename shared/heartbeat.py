"""Liveness: each service instance refreshes a key in a KV bucket whose entries expire.

A key that has expired means the instance went silent (crashed, hung, partitioned away). The
Supervisor reads the bucket to find silent workers; the Strategist counts live workers to keep each
one busy. Heartbeats are not events: they would flood the log with nothing worth auditing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from shared.bus import Bus

__all__ = ["HEARTBEAT_TTL_S", "Beat", "Heartbeat", "alive", "beat_of"]

BUCKET = "alphalab-heartbeats"
HEARTBEAT_TTL_S = 10.0


@dataclass(frozen=True, slots=True)
class Beat:
    service: str
    instance: str
    at: float
    busy_with: str | None  # the run id an instance is working on, if any


async def _bucket(bus: Bus) -> KeyValue:
    try:
        return await bus.js.key_value(BUCKET)
    except BucketNotFoundError:
        return await bus.js.create_key_value(bucket=BUCKET, ttl=HEARTBEAT_TTL_S, history=1)


class Heartbeat:
    """Refreshes this instance's key every `interval` seconds while running."""

    def __init__(self, bus: Bus, interval: float = 2.0) -> None:
        self._bus = bus
        self._interval = interval
        self.busy_with: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return f"{self._bus.producer.service}.{self._bus.producer.instance}"

    async def beat(self) -> None:
        beat = {
            "service": self._bus.producer.service,
            "instance": self._bus.producer.instance,
            "at": time.time(),
            "busy_with": self.busy_with,
        }
        await (await _bucket(self._bus)).put(self.key, json.dumps(beat).encode())

    async def _loop(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> Heartbeat:
        await self.beat()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # best effort: the TTL removes the key anyway
            await (await _bucket(self._bus)).delete(self.key)


async def beat_of(bus: Bus, service: str, instance: str) -> Beat | None:
    """The latest heartbeat of one instance, or None if it has expired (a direct read, no listing)."""
    kv = await _bucket(bus)
    try:
        entry = await kv.get(f"{service}.{instance}")
    except KeyNotFoundError:
        return None
    return Beat(**json.loads(entry.value)) if entry.value else None


async def alive(bus: Bus, service: str | None = None) -> list[Beat]:
    """The instances whose heartbeat has not expired, optionally of one service."""
    kv = await _bucket(bus)
    try:
        keys = await kv.keys()
    except (NoKeysError, TimeoutError):  # none yet, or a listing that timed out under load
        return []
    beats = []
    for key in keys:
        if service is not None and not key.startswith(f"{service}."):
            continue
        with contextlib.suppress(Exception):  # expired between listing and reading
            entry = await kv.get(key)
            if entry.value:
                beats.append(Beat(**json.loads(entry.value)))
    return beats
