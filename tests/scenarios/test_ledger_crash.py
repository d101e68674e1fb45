"""The ledger writer SIGKILLed in the middle of ingesting resumes with nothing lost and nothing doubled."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import duckdb

from shared.bus import STREAM, Bus
from shared.events import Event, RunFinished, encode
from shared.ledger import Ledger
from tests.conftest import start_service, wait_for
from tests.factories import event

TOTAL = 10_000


def _runs(start: int, stop: int) -> list[Event]:
    return [
        event(RunFinished(run_id=f"r{i}", proposal_id=f"p{i % 97}", value=float(i)), second=i)
        for i in range(start, stop)
    ]


async def _acked(bus: Bus) -> int:
    info = await bus.js.consumer_info(STREAM, "ledger")
    return info.ack_floor.stream_seq


async def test_sigkilled_ledger_resumes_exactly_once(bus: Bus, nats_server, home: Path) -> None:
    """Kill -9 the ledger twice mid-ingest; after restarts every event is stored once, in stream order."""
    events = _runs(0, TOTAL)
    await bus.publish_many(events[:6_000])
    log = home / "ledger.log"

    ledger = start_service("ledger", nats_server.url, home, log)
    await wait_for(lambda: _acked_or_zero(bus), 60, "the ledger to commit its first batch")
    _kill(ledger)
    with Ledger(home / "ledger.duckdb", read_only=True) as partial:
        stored_at_first_kill = partial.count()
    assert 0 < stored_at_first_kill < 6_000, "the kill must land mid-ingest"

    # While it is down the rest arrives, and 500 events come again without a message id, as a
    # retry after JetStream's duplicate window would: the stream holds them twice, the ledger must not.
    await bus.publish_many(events[6_000:])
    for again in events[100:600]:
        await bus.js.publish(again.subject, encode(again))
    assert (await bus.js.stream_info(STREAM)).state.messages == TOTAL + 500

    ledger = start_service("ledger", nats_server.url, home, log)
    await wait_for(lambda: _acked_beyond(bus, 6_000), 60, "the restarted ledger to pass 6,000")
    _kill(ledger)

    ledger = start_service("ledger", nats_server.url, home, log)
    try:
        await wait_for(lambda: bus.consumer_caught_up("ledger"), 60, "the ledger to catch up")
    finally:
        ledger.send_signal(signal.SIGTERM)
        assert ledger.wait(timeout=20) == 0, log.read_text()[-3000:]

    db = duckdb.connect(str(home / "ledger.duckdb"), read_only=True)
    count, distinct, first, last = db.execute(
        "SELECT count(*), count(DISTINCT event_id), min(position), max(position) FROM events"
    ).fetchone()  # type: ignore[misc]
    assert (count, distinct, first, last) == (TOTAL, TOTAL, 1, TOTAL)
    out_of_order = db.execute(
        "SELECT count(*) FROM (SELECT stream_seq < lag(stream_seq) OVER (ORDER BY position) AS back"
        " FROM events) WHERE back"
    ).fetchone()[0]  # type: ignore[index]
    assert out_of_order == 0
    stored_ids = [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY position").fetchall()]
    assert stored_ids == [e.event_id for e in events]


async def _acked_or_zero(bus: Bus) -> bool:
    try:
        return await _acked(bus) > 0
    except Exception:
        return False


async def _acked_beyond(bus: Bus, seq: int) -> bool:
    try:
        return await _acked(bus) > seq
    except Exception:
        return False


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
