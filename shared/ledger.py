"""The ledger: the append-only event log in DuckDB, written by exactly one process.

Positions are global and gapless; `event_id` is unique, so appending a redelivered event is a no-op.
Appends take a fast path (one bulk insert from Arrow) and fall back to per-event checks only when a
batch collides with stored events, which happens after a crash between commit and ack.

Each row keeps the event exactly as it travelled (`body`, the bytes published on the bus), with the
envelope fields beside it for queries and `payload` derived from the body. Reading back is then one
validation per event, which keeps a 1M-event replay within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from shared.errors import ConfigError
from shared.events import Event, decode, known_events

__all__ = ["Ledger", "Stored", "read_only"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position       BIGINT PRIMARY KEY,
    stream_seq     BIGINT,
    event_id       VARCHAR NOT NULL UNIQUE,
    type           VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    campaign_id    VARCHAR NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    producer       VARCHAR NOT NULL,
    causation_id   VARCHAR,
    correlation_id VARCHAR,
    body           JSON NOT NULL,
    payload        JSON GENERATED ALWAYS AS (json_extract(body, '$.payload')) VIRTUAL
)
"""

_COLUMNS = (
    "stream_seq", "event_id", "type", "schema_version", "campaign_id", "occurred_at",
    "producer", "causation_id", "correlation_id", "body",
)  # fmt: skip

Stored = tuple[Event, int | None, bytes]
"""An event to append: the decoded event, its stream sequence (if it came from the bus), its bytes."""


class Ledger:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only and not path.exists():
            raise ConfigError(f"no ledger at {path}: run a campaign with --home {path.parent} first")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as err:
            raise ConfigError(f"cannot open ledger {path}: {err}") from None
        self._db.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------------

    def append(self, batch: Sequence[Stored]) -> int:
        """Store each event not stored yet, in order; returns how many were new."""
        first_of_each: dict[str, Stored] = {}
        for row in batch:
            first_of_each.setdefault(row[0].event_id, row)
        unique = list(first_of_each.values())
        if not unique:
            return 0
        try:
            return self._insert(unique)
        except duckdb.ConstraintException:
            stored = self._stored_ids([row[0].event_id for row in unique])
            return self._insert([row for row in unique if row[0].event_id not in stored])

    def _insert(self, rows: Sequence[Stored]) -> int:
        if not rows:
            return 0
        table = _arrow_rows(rows)
        self._db.execute("BEGIN")
        try:
            self._db.register("incoming", table)
            self._db.execute(
                f"""INSERT INTO events ({", ".join(("position",) + _COLUMNS)})
                SELECT (SELECT coalesce(max(position), 0) FROM events) + row_number() OVER (ORDER BY ord),
                       {", ".join(_COLUMNS)}
                FROM incoming"""
            )
            self._db.unregister("incoming")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)

    def _stored_ids(self, event_ids: list[str]) -> set[str]:
        found = self._db.execute(
            "SELECT event_id FROM events WHERE event_id IN (SELECT unnest(?))", [event_ids]
        ).fetchall()
        return {row[0] for row in found}

    # --- reading ------------------------------------------------------------------------------

    def last_stream_seq(self) -> int:
        """The highest stream sequence stored: where a restarted writer resumes from."""
        return int(self._db.execute("SELECT coalesce(max(stream_seq), 0) FROM events").fetchone()[0])  # type: ignore[index]

    def positions(self) -> list[int]:
        """Every stored position, in order (a gapless log holds 1..count)."""
        rows = self._db.execute("SELECT position FROM events ORDER BY position").fetchall()
        return [int(position) for (position,) in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]

    def raw(
        self,
        *,
        campaign_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        after_position: int = 0,
        chunk: int = 10_000,
    ) -> Iterator[str]:
        """The JSON of each stored event in log order, optionally filtered."""
        where: list[str] = ["position > ?"]
        params: list[object] = [after_position]
        for column, value in (("campaign_id", campaign_id), ("type", event_type), ("occurred_at", since)):
            if value is not None:
                where.append(f"{column} {'>=' if column == 'occurred_at' else '='} ?")
                params.append(value)
        query = f"SELECT body::VARCHAR FROM events WHERE {' AND '.join(where)} ORDER BY position"
        for batch in self._db.cursor().sql(query, params=params).to_arrow_reader(chunk):
            yield from batch.column(0).to_pylist()

    def events(self, **filters: object) -> Iterator[Event]:
        """Stored events, decoded, in log order (same filters as `raw`)."""
        validate = known_events().validate_json
        for body in self.raw(**filters):  # type: ignore[arg-type]
            try:
                yield validate(body)
            except ValueError:
                yield decode(body.encode())  # unrecognized types and versions take the slow path


def _arrow_rows(rows: Sequence[Stored]) -> pa.Table:
    events = [event for event, _, _ in rows]
    return pa.table(
        {
            "ord": pa.array(range(len(rows)), pa.int64()),
            "stream_seq": pa.array([seq for _, seq, _ in rows], pa.int64()),
            "event_id": [e.event_id for e in events],
            "type": [e.type for e in events],
            "schema_version": pa.array([e.schema_version for e in events], pa.int32()),
            "campaign_id": [e.campaign_id for e in events],
            "occurred_at": pa.array([e.occurred_at for e in events], pa.timestamp("us", tz="UTC")),
            "producer": [f"{e.producer.service}/{e.producer.instance}" for e in events],
            "causation_id": [e.causation_id for e in events],
            "correlation_id": [e.correlation_id for e in events],
            "body": [body.decode() for _, _, body in rows],
        }
    )


def read_only(path: Path, otherwise: str) -> Ledger:
    """The ledger at `path` opened for reading; if a running writer holds it, an error that says so
    and what to do `otherwise` (DuckDB lets no other process open a file its writer has open)."""
    try:
        return Ledger(path, read_only=True)
    except ConfigError as err:
        if "lock" in str(err).lower():
            writer = "is open by a running ledger writer (DuckDB allows one writer)"
            raise ConfigError(f"the ledger {path} {writer}; {otherwise}") from None
        raise
