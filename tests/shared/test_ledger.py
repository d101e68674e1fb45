"""The ledger: an append-only, gapless, deduplicated event log in DuckDB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.events import Event, ProposalCreated, decode, encode
from shared.ledger import Ledger, Stored
from tests.factories import EPOCH, event, small_campaign


def _rows(events: Sequence[Event], first_seq: int = 1) -> list[Stored]:
    return [(e, first_seq + i, encode(e)) for i, e in enumerate(events)]


def _positions(ledger: Ledger) -> list[int]:
    return [row[0] for row in ledger._db.execute("SELECT position FROM events ORDER BY position").fetchall()]


def _proposal(pid: str, second: float = 0.0) -> Event:
    return event(ProposalCreated(proposal_id=pid, config={"id": pid}), second=second)


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / "ledger.duckdb") as opened:
        yield opened


def test_positions_are_gapless_across_appends(ledger: Ledger) -> None:
    """Several appends give positions 1..N with no gaps."""
    events = small_campaign(runs=3)
    for start in range(0, len(events), 3):
        ledger.append(_rows(events[start : start + 3], first_seq=start + 1))
    assert _positions(ledger) == list(range(1, len(events) + 1))
    assert ledger.count() == len(events)


def test_overlapping_batch_stores_only_new_events(ledger: Ledger) -> None:
    """A batch that repeats stored events stores just the new ones, keeping positions gapless."""
    events = small_campaign(runs=3)
    assert ledger.append(_rows(events[:5])) == 5
    assert ledger.append(_rows(events[3:], first_seq=4)) == len(events) - 5
    assert _positions(ledger) == list(range(1, len(events) + 1))
    assert list(ledger.events()) == events


def test_fully_stored_batch_is_a_no_op(ledger: Ledger) -> None:
    """Appending only events already stored adds nothing and the ledger stays usable."""
    events = small_campaign(runs=1)
    ledger.append(_rows(events))
    assert ledger.append(_rows(events)) == 0
    assert ledger.append([]) == 0
    assert ledger.count() == len(events)


def test_duplicates_in_one_batch_are_stored_once_first_wins(ledger: Ledger) -> None:
    """An event repeated within one batch is stored once, from its first occurrence."""
    a, b = _proposal("a"), _proposal("b", 1)
    assert ledger.append([(a, 1, encode(a)), (b, 2, encode(b)), (a, 3, encode(a))]) == 2
    seqs = ledger._db.execute("SELECT event_id, stream_seq FROM events").fetchall()
    assert dict(seqs)[a.event_id] == 1
    assert ledger.last_stream_seq() == 2


def test_duplicates_in_one_batch_keep_first_occurrence_order(ledger: Ledger) -> None:
    """A repeated event keeps the log position of its first occurrence, ahead of events that followed it."""
    a, b = _proposal("a"), _proposal("b", 1)
    ledger.append([(a, 1, encode(a)), (b, 2, encode(b)), (a, 3, encode(a))])
    assert [e.payload.proposal_id for e in ledger.events()] == ["a", "b"]


def test_events_read_back_equal_and_in_order(ledger: Ledger) -> None:
    """events() returns events equal to the ones appended, in append order."""
    events = small_campaign(runs=4)
    ledger.append(_rows(events))
    assert list(ledger.events()) == events


def test_raw_returns_the_stored_bytes(ledger: Ledger) -> None:
    """raw() yields each event's JSON, which decodes to the appended event."""
    events = small_campaign(runs=1)
    ledger.append(_rows(events))
    assert [decode(body.encode()) for body in ledger.raw()] == events


def test_filters_select_by_campaign_type_and_time(ledger: Ledger) -> None:
    """campaign_id, event_type and since each narrow what events() returns."""
    c1, c2 = small_campaign("c1", runs=2), small_campaign("c2", runs=1)
    ledger.append(_rows(c1 + c2))
    assert list(ledger.events(campaign_id="c2")) == c2
    finished = list(ledger.events(event_type="run-finished"))
    assert [e.payload.run_id for e in finished] == ["r0", "r1", "r0"]
    late = [e for e in c1 + c2 if e.occurred_at >= EPOCH.replace(second=3)]
    assert list(ledger.events(since=EPOCH.replace(second=3))) == late
    assert list(ledger.events(campaign_id="c1", event_type="run-finished", after_position=6)) == [c1[-1]]


def test_payload_column_is_queryable_as_json(ledger: Ledger) -> None:
    """The payload column supports DuckDB JSON operators on payload fields."""
    ledger.append(_rows(small_campaign(runs=3)))
    found = ledger._db.execute(
        "SELECT payload->>'run_id', CAST(payload->>'value' AS DOUBLE) FROM events "
        "WHERE type = 'run-finished' AND payload->>'proposal_id' = 'p1'"
    ).fetchall()
    assert found == [("r1", 6.0)]


def test_unrecognized_event_is_stored_and_read_back(ledger: Ledger) -> None:
    """An event of an unknown type is stored and read back as unrecognized with its payload."""
    known = small_campaign(runs=0)
    doc = json.loads(encode(known[0]))
    doc.update(event_id="u1", type="quantum-leap", payload={"energy": 42})
    unknown = decode(json.dumps(doc).encode())
    ledger.append(_rows([known[0], unknown, known[1]]))
    read = list(ledger.events())
    assert [e.recognized for e in read] == [True, False, True]
    assert read[1] == unknown
    assert read[1].payload.model_extra == {"energy": 42}


def test_missing_ledger_read_only_names_the_path(tmp_path: Path) -> None:
    """Opening a ledger that does not exist read-only raises ConfigError naming its path."""
    missing = tmp_path / "nowhere" / "ledger.duckdb"
    with pytest.raises(ConfigError, match=str(missing)):
        Ledger(missing, read_only=True)
    assert not missing.exists()


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    """Events appended before closing are there after reopening, and positions continue from them."""
    path = tmp_path / "ledger.duckdb"
    events = small_campaign(runs=2)
    with Ledger(path) as first:
        first.append(_rows(events[:4]))
    with Ledger(path) as second:
        second.append(_rows(events[4:], first_seq=5))
        assert second.last_stream_seq() == len(events)
    with Ledger(path, read_only=True) as reader:
        assert list(reader.events()) == events
        assert _positions(reader) == list(range(1, len(events) + 1))
