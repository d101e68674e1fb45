"""Snapshot benchmark: a service's cold start and a replay, from a snapshot and from the first event.

    .venv/bin/python bench/snapshots.py [--events N] [--tail T]

Measured side by side in one run (compare the rows with each other, not with another machine):

1. in memory   N events of bench/ledger.py's realistic campaign, decoded beforehand: the full fold
               (what a replay does today), the snapshot written (pickled), and a replay from it: the
               snapshot loaded plus the last T events folded.
2. cold start  the same N events in an embedded nats-server; a snapshot of the first N - T saved in
               the object store (as the supervisor saves it); then a LiveProjection started and caught
               up, with snapshots (what a service does on start) and without (the whole stream). The
               two final states are compared: they must be equal.

Targets (issue 13): cold start on a 1,000,000-event stream <= 1 s; replay from a snapshot <= 2 s per
1M events. The summary says PASS or MISS; a MISS still exits 0, an unequal state exits 1.
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the benchmark helpers are imported)
from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ledger import campaign, publish
from rich.console import Console
from rich.table import Table

from shared.bus import Bus
from shared.events import Event
from shared.live import LiveProjection
from shared.logging import configure_logging
from shared.nats_server import EmbeddedNats
from shared.projections import Lab, evolve
from shared.replay import fold, gc_paused
from shared.snapshots import SnapshotStore, decode, encode
from tests.factories import PRODUCER

console = Console()


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def in_memory(events: list[Event], tail: int) -> tuple[dict[str, float], int, bool]:
    full_s, full = timed(lambda: fold(events))
    head = fold(events[:-tail])
    encode_s, data = timed(lambda: encode(head, len(events) - tail, "bench"))

    def replay() -> Lab:
        snapshot = decode(data)
        assert snapshot is not None
        lab = snapshot.lab
        with gc_paused():
            for e in events[-tail:]:
                lab = evolve(lab, e)
        return lab

    replay_s, replayed = timed(replay)
    load_s, _ = timed(lambda: decode(data))
    seconds = {"full": full_s, "encode": encode_s, "load": load_s, "replay": replay_s}
    return seconds, len(data), replayed == full


async def cold_start(events: list[Event], tail: int, tmp: Path) -> tuple[dict[str, float], bool]:
    with EmbeddedNats(tmp / "nats") as server:
        bus = await Bus.connect(server.url, PRODUCER)
        try:
            publish_s, _ = await _timed(publish(bus, events[:-tail], 1000))
            await SnapshotStore(bus).save(fold(events[:-tail]), len(events) - tail)
            await publish(bus, events[-tail:], 1000)
            seconds = {"publish": publish_s}
            labs = {}
            for name, snapshots in (("with snapshot", SnapshotStore(bus)), ("whole stream", None)):
                projection = LiveProjection(bus, snapshots=snapshots)

                async def started(projection: LiveProjection = projection) -> None:
                    await projection.start()
                    await projection.settle(timeout=3600)

                seconds[name], _ = await _timed(started())
                await projection.stop()
                labs[name] = projection.lab
        finally:
            await bus.close()
    return seconds, labs["with snapshot"] == labs["whole stream"]


async def _timed(awaitable):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = await awaitable
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1M)")
    parser.add_argument("--tail", type=int, default=1_000, help="events after the snapshot (default 1,000)")
    args = parser.parse_args()
    configure_logging("console", "warning")
    with gc_paused():
        events = list(itertools.islice(campaign(), args.events))
    per_million = 1e6 / args.events
    memory, size, same_in_memory = in_memory(events, args.tail)
    with tempfile.TemporaryDirectory(prefix="alphalab-bench-snapshots-") as tmp:
        start, same_live = asyncio.run(cold_start(events, args.tail, Path(tmp)))

    grid = Table(title=f"{args.events:,} events, snapshot {size / 1e6:.1f} MB, {args.tail:,} events after it")
    for column in ("step", "seconds", "per 1M events", "vs the full fold"):
        grid.add_column(column, justify="left" if column == "step" else "right")
    rows = [
        ("fold every event (in memory)", memory["full"], memory["full"]),
        ("write the snapshot", memory["encode"], memory["full"]),
        ("load the snapshot", memory["load"], memory["full"]),
        ("replay: snapshot + tail", memory["replay"], memory["full"]),
        ("cold start: whole stream over NATS", start["whole stream"], start["whole stream"]),
        ("cold start: snapshot + tail over NATS", start["with snapshot"], start["whole stream"]),
    ]
    for name, seconds, reference in rows:
        grid.add_row(name, f"{seconds:.2f}", f"{seconds * per_million:.2f}", f"{seconds / reference:.2f}")
    console.print(grid)
    cold, replay = start["with snapshot"] * per_million, memory["replay"] * per_million
    for label, value, target in (("cold start", cold, 1.0), ("replay from snapshot", replay, 2.0)):
        verdict = "[green]PASS[/]" if value <= target else "[red]MISS[/]"
        console.print(f"{verdict} {label}: {value:.2f} s per 1M events (target <= {target:g} s)")
    if not (same_in_memory and same_live):
        console.print("[red]the state from a snapshot differs from the full fold[/]")
        return 1
    console.print("the states from a snapshot equal the full folds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
