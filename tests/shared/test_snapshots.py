"""Snapshots: a snapshot plus the events after it folds to exactly what the whole log folds to, and a
snapshot that is not a fold of this log by this code is ignored, never trusted."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bus import STREAM, Bus
from shared.events import Event, Producer
from shared.live import LiveProjection
from shared.projections import Lab, evolve
from shared.replay import fold
from shared.snapshots import SnapshotStore, Snapshotter, decode, encode
from tests.factories import event
from tests.shared.test_events import SAMPLES

CREATED = "2026-01-01T00:00:00Z"
_IDS = ("proposal_id", "run_id", "best_run_id", "target", "submission")


def _event(kind: str, campaign_id: str, number: int, second: int) -> Event:
    """A sample event of `kind`, about proposal/run `number`: a handful of numbers over a few campaigns
    make proposals that run, fail, get cancelled and are analysed in every order, late results included."""
    sample = SAMPLES[kind]
    ids = {name: f"{name[0]}{number}" for name in _IDS if name in type(sample).model_fields}
    return event(sample.model_copy(update=ids), campaign_id, second)


campaigns = st.lists(
    st.tuples(st.sampled_from(sorted(SAMPLES)), st.sampled_from(("c1", "c2", "c3")), st.integers(0, 4)),
    max_size=120,
).map(lambda steps: [_event(kind, c, n, second) for second, (kind, c, n) in enumerate(steps)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=campaigns, cut=st.floats(0, 1))
def test_a_snapshot_and_the_tail_fold_to_the_full_fold(events: list[Event], cut: float) -> None:
    at = int(cut * len(events))
    restored = decode(encode(fold(events[:at]), at, CREATED))
    assert restored is not None and restored.stream_seq == at
    lab = restored.lab
    for e in events[at:]:
        lab = evolve(lab, e)
    assert lab == fold(events)


def test_a_snapshot_of_other_code_or_a_tampered_one_is_ignored() -> None:
    data = encode(fold([_event("campaign-started", "c1", 0, 0)]), 1, CREATED)
    assert decode(data) is not None
    assert decode(data.replace(b'"schema": "', b'"schema": "0', 1)) is None  # other code wrote it
    assert decode(data[: len(data) - 40]) is None  # truncated
    assert decode(b"not a snapshot at all") is None


def test_a_planted_snapshot_cannot_run_code() -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("touch /tmp/alphalab-pwned",))

    good = encode(Lab(), 0, CREATED)
    header = good[: good.index(b"\n", len(b"alphalab-snapshot\n")) + 1]
    assert decode(header + pickle.dumps(Payload())) is None


async def test_a_service_starts_from_the_snapshot_and_folds_only_the_tail(bus: Bus) -> None:
    events = [_event(kind, "c1", i % 4, i) for i, kind in enumerate(sorted(SAMPLES) * 6)]
    await bus.publish_many(events[:100])
    writer = LiveProjection(bus, snapshots=SnapshotStore(bus))
    await writer.start()
    await writer.settle()
    assert writer.started_from == 0  # nothing saved yet
    await Snapshotter(SnapshotStore(bus), every=50).tick(writer)
    await writer.stop()
    await bus.publish_many(events[100:])

    tail: list[Event] = []
    reader = LiveProjection(bus, on_event=tail.append, snapshots=SnapshotStore(bus))
    await reader.start()
    await reader.settle()
    await reader.stop()
    assert reader.started_from == 100 and len(tail) == len(events) - 100
    assert reader.lab == fold(events)


async def test_a_snapshot_of_a_stream_since_recreated_is_ignored(bus: Bus) -> None:
    await bus.publish_many([_event("campaign-started", f"c{i}", 0, i) for i in range(5)])
    await SnapshotStore(bus).save(fold([_event("campaign-started", f"c{i}", 0, i) for i in range(5)]), 5)
    assert await SnapshotStore(bus).load() is not None
    await bus.js.delete_stream(STREAM)
    fresh = await Bus.connect(bus.nc.connected_url.geturl(), Producer(service="test", instance="again"))
    try:
        await fresh.publish(_event("campaign-started", "c9", 0, 0))
        assert await SnapshotStore(fresh).load() is None
        projection = LiveProjection(fresh, snapshots=SnapshotStore(fresh))
        await projection.start()
        await projection.settle()
        await projection.stop()
        assert projection.started_from == 0 and set(projection.lab.campaigns) == {"c9"}
    finally:
        await fresh.close()


@pytest.mark.parametrize("every", [0, 1000])
async def test_no_snapshot_before_enough_events(bus: Bus, every: int) -> None:
    await bus.publish_many([_event("campaign-started", f"c{i}", 0, i) for i in range(20)])
    projection = LiveProjection(bus, snapshots=SnapshotStore(bus))
    await projection.start()
    await projection.settle()
    await Snapshotter(SnapshotStore(bus), every=every).tick(projection)
    await projection.stop()
    assert await SnapshotStore(bus).load() is None
