"""Snapshots of the lab's projections: the folded state and the stream position it was folded up to.

A service starts from the latest snapshot and folds only the events after it, instead of the whole
stream from its first event. The snapshot is a cache, never the truth: the log is. So a snapshot is
used only when everything says it is a fold of this log by this code:

- its schema is a digest of the source of the projections and the event types (`SCHEMA`): a snapshot
  written by other code (an older or newer version of the lab) is ignored, never trusted;
- it names the stream it was folded from (its creation time) and a position within it: one from a
  stream since deleted and recreated, or ahead of the stream, is ignored.

The state is pickled (the projections are plain dataclasses and pydantic models). Loading it skips
fetching and decoding every event over NATS (a service starts 1.5-2.3x faster at 100,000 events:
bench/snapshots.py), though it costs about what folding the decoded events does, as the projections
are as large as the events. It is unpickled by an unpickler that builds only the projections' and
events' own types and a few builtins, so a snapshot planted in the bucket cannot run code.
The cyclic garbage collector is paused while loading, as while folding: it otherwise costs more than
the load itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from nats.js.errors import NotFoundError

from shared.bus import STREAM, Bus
from shared.projections import Lab
from shared.replay import gc_paused

if TYPE_CHECKING:
    from shared.live import LiveProjection

__all__ = ["SCHEMA", "SNAPSHOT_BUCKET", "Snapshot", "SnapshotStore", "Snapshotter", "decode", "encode"]

FORMAT = 1
_MAGIC = b"alphalab-snapshot\n"
SNAPSHOT_BUCKET = "alphalab-snapshots"
_NAME = "lab"  # the one object in the bucket: the latest snapshot of the whole lab
_SHARED = Path(__file__).resolve().parent
log = structlog.get_logger(__name__)


def _schema() -> str:
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    sources = [*sorted((_SHARED / "projections").glob("*.py")), *sorted((_SHARED / "events").glob("*.py"))]
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:32]


SCHEMA = _schema()


@dataclass(frozen=True, slots=True)
class Snapshot:
    lab: Lab
    stream_seq: int  # the stream sequence of the last event folded into `lab`
    stream_created: str  # which incarnation of the stream (its creation time, as the server says)
    taken_at: float  # unix time


def encode(lab: Lab, stream_seq: int, stream_created: str) -> bytes:
    header = {"schema": SCHEMA, "stream_seq": stream_seq, "stream_created": stream_created, "at": time.time()}
    return _MAGIC + json.dumps(header).encode() + b"\n" + pickle.dumps(lab, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> Snapshot | None:
    """The snapshot in `data`, or None (logged) if it is not one this code wrote."""
    if not data.startswith(_MAGIC):
        log.warning("snapshot_ignored", why="not a snapshot")
        return None
    header_line, _, state = data[len(_MAGIC) :].partition(b"\n")
    try:
        header = json.loads(header_line)
    except ValueError:
        log.warning("snapshot_ignored", why="unreadable header")
        return None
    if header.get("schema") != SCHEMA:
        log.info("snapshot_ignored", why="written by other code", schema=header.get("schema"), ours=SCHEMA)
        return None
    try:
        with gc_paused():
            lab = _Unpickler(io.BytesIO(state)).load()
    except Exception as err:  # a truncated or tampered state: fold from the log instead
        log.warning("snapshot_ignored", why=f"unreadable state: {type(err).__name__}: {err}"[:300])
        return None
    if not isinstance(lab, Lab):
        log.warning("snapshot_ignored", why=f"holds a {type(lab).__name__}, not a Lab")
        return None
    return Snapshot(lab, int(header["stream_seq"]), str(header["stream_created"]), float(header["at"]))


class _Unpickler(pickle.Unpickler):
    """Builds only what a Lab is made of: the projections', the events' and a few builtin types."""

    _MODULES = ("shared.projections.", "shared.events.")
    _ALLOWED = {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "object"),
        ("copyreg", "_reconstructor"),
        ("collections", "defaultdict"),
        ("collections", "OrderedDict"),
        ("collections", "Counter"),
        ("collections", "deque"),
        ("datetime", "datetime"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("datetime", "date"),
        ("pydantic_core._pydantic_core", "TzInfo"),  # the tzinfo of a datetime pydantic parsed
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED or (module.startswith(self._MODULES) and not name.startswith("_")):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"a snapshot may not build {module}.{name}")


class SnapshotStore:
    """The latest snapshot of the whole lab: one object in a bucket of its own, which only the
    Supervisor's NATS user may write (infra/nats/accounts.conf) and the other services read: a service
    that could plant a snapshot could make the others fold from any state it liked."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def load(self) -> Snapshot | None:
        """The latest snapshot if it is of this stream, as it is now, else None."""
        try:
            info = await self._bus.js.stream_info(STREAM)
            bucket = await self._bus.js.object_store(SNAPSHOT_BUCKET)
            data = bytes((await bucket.get(_NAME)).data or b"")
        except NotFoundError:  # no stream, no bucket, or no snapshot in it yet
            return None
        snapshot = decode(data)
        if snapshot is None:
            return None
        if snapshot.stream_created != str(info.created) or snapshot.stream_seq > info.state.last_seq:
            log.warning("snapshot_ignored", why="of another stream", stream_seq=snapshot.stream_seq)
            return None
        return snapshot

    async def save(self, lab: Lab, stream_seq: int) -> int:
        """Store a snapshot of `lab` folded up to `stream_seq`; returns its size in bytes."""
        info = await self._bus.js.stream_info(STREAM)
        data = encode(lab, stream_seq, str(info.created))
        try:
            bucket = await self._bus.js.object_store(SNAPSHOT_BUCKET)
        except NotFoundError:
            bucket = await self._bus.js.create_object_store(SNAPSHOT_BUCKET)
        await bucket.put(_NAME, data)
        log.info("snapshot_saved", stream_seq=stream_seq, bytes=len(data))
        return len(data)


class Snapshotter:
    """Saves a snapshot of a live projection each time it has folded `every` events more than the
    latest snapshot, or a quarter of the stream if that is more, while caught up (one service does this:
    the supervisor). Writing blocks its event loop for as long as pickling the state takes, which grows
    with the stream: the quarter keeps that cost per event constant (~12 s per 1M-event state here)."""

    def __init__(self, store: SnapshotStore, every: int) -> None:
        self._store, self._every = store, every
        self._saved = 0

    async def tick(self, projection: LiveProjection) -> None:
        self._saved = max(self._saved, projection.started_from)
        due = max(self._every, self._saved // 4)
        if self._every > 0 and projection.stream_seq - self._saved >= due:
            await self._store.save(projection.lab, projection.stream_seq)
            self._saved = projection.stream_seq
