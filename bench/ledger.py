"""Ledger benchmark: how fast events get from the bus into DuckDB, and how fast a replay rebuilds them.

    .venv/bin/python bench/ledger.py [--events N] [--replay-events M] [--chunk C]

Everything is measured in one run because the machine is noisy: compare the rows of one run with
each other (the ratios), not with numbers from another run or another machine.

1. e2e ingest    N events published with `Bus.publish_many` (C per call) to an embedded nats-server
                 while the real ledger writer (`python -m services.ledger`, its own process) consumes;
                 timed from the first publish until the durable "ledger" has acked the stream's last
                 sequence, i.e. until every event is committed in DuckDB. The file is then counted.
2. publish only  the same N events, same path, to a fresh server nobody consumes from: the ceiling of 1.
3. DuckDB        the same N rows appended with `Ledger.append` in the writer's batch size, beside one
                 raw insert of an Arrow table into a plain table with the same columns (no indexes, no
                 constraints), and an ordered full scan of each file.
4. replay        a synthetic M-event campaign written to a ledger (not timed), then `fold(ledger.events())`
                 end to end, beside the DuckDB scan alone (`Ledger.raw`), the decode alone (every body
                 validated, nothing kept) and the projections alone (folding events decoded beforehand);
                 "interplay" is what end to end costs beyond those three.

The summary marks the targets PASS or MISS: e2e / publish-only >= 0.30, replay <= 10 s per 1M events.
A MISS still exits 0 (this reports, it does not assert); a failed correctness check exits 1.
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the test helpers are imported)
from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb
from rich.console import Console
from rich.table import Table

from shared.bus import STREAM, Bus
from shared.events import Event, Payload, encode, known_events
from shared.events import catalogue as ev
from shared.ledger import _COLUMNS as LEDGER_COLUMNS
from shared.ledger import Ledger, _arrow_rows
from shared.logging import configure_logging
from shared.nats_server import EmbeddedNats
from shared.projections import Lab
from shared.replay import fold, gc_paused
from tests.conftest import start_service, wait_for
from tests.factories import PRODUCER, event

WRITER_BATCH = 2000  # what services.ledger.writer fetches and appends at once
CAMPAIGN = "bench"
CONFIGS = [
    {"model": model, "lr": lr, "depth": depth}
    for model, lr, depth in itertools.product(("ridge", "gbm", "mlp"), (0.1, 0.03, 0.01), (2, 4, 8))
]
TRACEBACK = "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA error: out of memory"
COLUMNS = ", ".join(LEDGER_COLUMNS)
PLAIN_TABLE = """CREATE TABLE events (
    position BIGINT, stream_seq BIGINT, event_id VARCHAR, type VARCHAR, schema_version INTEGER,
    campaign_id VARCHAR, occurred_at TIMESTAMPTZ, recorded_at TIMESTAMPTZ DEFAULT current_timestamp,
    producer VARCHAR, causation_id VARCHAR, correlation_id VARCHAR, body JSON)"""
console = Console()
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --- a realistic campaign --------------------------------------------------------------------------


def campaign(seed: int = 7) -> Iterator[Event]:
    """An endless campaign, one event a second: a start, 3 baselines, then 7 events per experiment
    (LLM call, proposal, run started, run finished or (5%) failed, LLM call, analysis, agent turn), a
    playbook revision citing recent runs every 50 experiments, a stall and an intervention every 10,000."""
    rng = random.Random(seed)
    quality = [rng.uniform(0.6, 0.9) for _ in CONFIGS]  # each configuration's true MAE; runs add noise
    clock = itertools.count()

    def at(payload: Payload, caused_by: Event | None = None) -> Event:
        return event(payload, CAMPAIGN, next(clock), caused_by=caused_by)

    def llm_call(role: str, caused_by: Event) -> Event:
        tokens_in, tokens_out = rng.randrange(2_000, 30_000), rng.randrange(200, 3_000)
        usd, seconds = (3 * tokens_in + 15 * tokens_out) / 1e6, rng.uniform(1, 30)
        call = ev.LlmCallFinished(
            role=role, provider="anthropic", model="claude-sonnet-4", input_tokens=tokens_in,
            output_tokens=tokens_out, usd=usd, seconds=seconds,
        )  # fmt: skip
        return at(call, caused_by)

    start = at(ev.CampaignStarted(
        domain="forecasting", objective="next-day demand with the lowest MAE", metric="mae",
        direction="minimize", budget=ev.BudgetLimits(max_usd=50_000.0), brain="llm",
    ))  # fmt: skip
    yield start
    for name, value in (("last-value", 1.0), ("seasonal-naive", 0.95), ("ridge-default", 0.85)):
        yield at(ev.BaselineEvaluated(name=name, value=value, metrics={"rmse": 1.3 * value}), start)
    best, finished, lessons = 1.0, ["baseline"], list[ev.Lesson]()
    for i in itertools.count():
        pid, rid, k, wall = f"p{i}", f"r{i}", rng.randrange(len(CONFIGS)), rng.uniform(20, 600)
        call = llm_call("proposer", start)
        why = f"try {CONFIGS[k]['model']} near the best so far"
        proposal = at(ev.ProposalCreated(proposal_id=pid, config=CONFIGS[k], seed=i, rationale=why), call)
        started = at(ev.RunStarted(run_id=rid, proposal_id=pid, worker=f"worker-{i % 4}"), proposal)
        ids = {"run_id": rid, "proposal_id": pid, "wall_seconds": wall}
        if rng.random() < 0.05:
            verdict = "invalid"
            outcome: Payload = ev.RunFailed(**ids, error="CUDA out of memory", log_tail=TRACEBACK)
        else:
            value = rng.gauss(quality[k], 0.02)
            verdict, best = ("improved" if value < best else "worse"), min(best, value)
            finished.append(rid)
            metrics = {"rmse": 1.3 * value, "mape": value / 8}
            outcome = ev.RunFinished(**ids, value=value, metrics=metrics)
        result = at(outcome, started)
        yield from (call, proposal, started, result, llm_call("analyst", result))
        summary = f"{verdict}; best so far {best:.4f}"
        yield at(ev.RunAnalyzed(run_id=rid, proposal_id=pid, verdict=verdict, summary=summary), result)
        digest = "sha256:" + hashlib.sha256(rid.encode()).hexdigest()
        yield at(ev.AgentTurn(role="analyst", turn=i + 1, summary=summary, transcript_digest=digest), result)
        if i % 50 == 49:
            text = f"{CONFIGS[k]['model']} at depth {CONFIGS[k]['depth']} holds up"
            lessons = [*lessons[-11:], ev.Lesson(text=text, run_ids=tuple(finished[-5:]))]
            yield at(ev.PlaybookRevised(revision=i // 50 + 1, lessons=tuple(lessons)), result)
        if i % 10_000 == 9_999:
            stall = at(ev.StallDetected(kind="run_overtime", subject=rid), result)
            yield stall
            yield at(ev.InterventionIssued(action="requeue", target=rid, reason="overtime"), stall)


# --- measurements ----------------------------------------------------------------------------------


async def publish(bus: Bus, events: Sequence[Event], chunk: int) -> None:
    for start in range(0, len(events), chunk):
        await bus.publish_many(events[start : start + chunk])


async def ingest(events: Sequence[Event], chunk: int, tmp: Path) -> tuple[float, float, int, int]:
    """Seconds publishing, seconds until the ledger committed everything, rows stored, writer's exit code."""
    home, log = tmp / "home", tmp / "ledger.log"
    with EmbeddedNats(tmp / "nats") as server:
        bus = await Bus.connect(server.url, PRODUCER)
        writer = start_service("ledger", server.url, home, log)
        try:
            await wait_for(lambda: bus.consumer_caught_up("ledger"), 60, "the ledger writer to subscribe")
            start = time.perf_counter()
            await publish(bus, events, chunk)
            published = time.perf_counter() - start
            await wait_for(lambda: bus.consumer_caught_up("ledger"), 1800, "the ledger to commit everything")
            committed = time.perf_counter() - start
        finally:
            writer.send_signal(signal.SIGTERM)
            code = writer.wait(timeout=60)
            await bus.close()
    if code != 0:
        console.print(f"[red]the ledger writer exited {code}; its log ends:[/]\n{log.read_text()[-2000:]}")
    with Ledger(home / "ledger.duckdb", read_only=True) as ledger:
        return published, committed, ledger.count(), code


async def publish_only(events: Sequence[Event], chunk: int, tmp: Path) -> tuple[float, int]:
    """Seconds publishing to a fresh server with no consumer, and how many messages the stream holds."""
    with EmbeddedNats(tmp / "nats-publish-only") as server:
        bus = await Bus.connect(server.url, PRODUCER)
        try:
            start = time.perf_counter()
            await publish(bus, events, chunk)
            seconds = time.perf_counter() - start
            stored = (await bus.js.stream_info(STREAM)).state.messages
        finally:
            await bus.close()
    return seconds, stored


def scan(path: Path) -> float:
    """Seconds to read every body of a ledger-shaped file in log order, as one Arrow table."""
    with duckdb.connect(str(path), read_only=True) as db:
        return timed(db.sql("SELECT body FROM events ORDER BY position").to_arrow_table)[0]


def duckdb_alone(events: Sequence[Event], tmp: Path) -> dict[str, float]:
    """Seconds for `Ledger.append` in writer-sized batches, for building the Arrow table of all rows and
    inserting it into a plain table at once, and for scanning each file."""
    rows = [(e, seq, encode(e)) for seq, e in enumerate(events, start=1)]
    batches = [rows[i : i + WRITER_BATCH] for i in range(0, len(rows), WRITER_BATCH)]
    with Ledger(tmp / "append.duckdb") as ledger:
        append_s, _ = timed(lambda: [ledger.append(batch) for batch in batches])
    arrow_s, table = timed(lambda: _arrow_rows(rows))
    with duckdb.connect(str(tmp / "plain.duckdb")) as db:
        db.execute(PLAIN_TABLE)
        db.register("incoming", table)
        insert = f"INSERT INTO events (position, {COLUMNS}) SELECT ord + 1, {COLUMNS} FROM incoming"
        insert_s, _ = timed(lambda: db.execute(insert))
    scans = {f"{name}_scan": scan(tmp / f"{name}.duckdb") for name in ("append", "plain")}
    return {"append": append_s, "arrow": arrow_s, "insert": insert_s, **scans}


def write_campaign(path: Path, n: int, chunk: int = 50_000) -> None:
    events = itertools.islice(campaign(), n)
    with Ledger(path) as ledger:
        for first in range(0, n, chunk):
            batch = itertools.islice(events, chunk)
            ledger.append([(e, seq, encode(e)) for seq, e in enumerate(batch, start=first + 1)])


def decode_all(bodies: list[str]) -> None:
    validate = known_events().validate_json
    for body in bodies:
        validate(body)


def replay(n: int, tmp: Path) -> tuple[dict[str, float], int, Lab]:
    """Seconds to write the campaign, to fold it end to end, and to scan, decode and fold it each alone;
    the rows stored; the state folded end to end."""
    path = tmp / "replay.duckdb"
    write_s, _ = timed(lambda: write_campaign(path, n))
    with Ledger(path, read_only=True) as ledger:
        fold_s, lab = timed(lambda: fold(ledger.events()))
        scan_s, bodies = timed(lambda: list(ledger.raw()))
        stored = ledger.count()
    decode_s, _ = timed(lambda: decode_all(bodies))
    with gc_paused():
        events = [known_events().validate_json(body) for body in bodies]
    project_s, _ = timed(lambda: fold(events))
    seconds = {"write": write_s, "fold": fold_s, "scan": scan_s, "decode": decode_s, "project": project_s}
    return seconds, stored, lab


# --- report ----------------------------------------------------------------------------------------


def table(title: str, *columns: str) -> Table:
    grid = Table(title=title)
    for i, column in enumerate(columns):
        grid.add_column(column, justify="right" if i else "left")
    return grid


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events to ingest (default 50,000)")
    parser.add_argument("--replay-events", type=int, default=1_000_000, help="events to replay (default 1M)")
    parser.add_argument("--chunk", type=int, default=2_000, help="events per publish_many (default 2,000)")
    args = parser.parse_args()
    n, m = args.events, args.replay_events
    if min(n, m, args.chunk) < 1:
        parser.error("--events, --replay-events and --chunk must be at least 1")
    configure_logging("console", "warning")
    events = list(itertools.islice(campaign(), n))

    with tempfile.TemporaryDirectory(prefix="alphalab-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        console.print(f"[dim]e2e ingest of {n:,} events ...[/]")
        published, committed, ingested, writer_code = asyncio.run(ingest(events, args.chunk, tmp))
        console.print("[dim]publish only ...[/]")
        publish_s, in_stream = asyncio.run(publish_only(events, args.chunk, tmp))
        console.print("[dim]DuckDB alone ...[/]")
        db = duckdb_alone(events, tmp)
        console.print(f"[dim]replay: writing {m:,} events (untimed), then reading them back ...[/]")
        rp, replay_rows, lab = replay(m, tmp)

    detail = table(f"{n:,} events ingested, {m:,} replayed", "measurement", "events", "seconds", "events/s")
    for label, count, seconds in (
        ("e2e: publish phase, ledger consuming", n, published),
        ("e2e: publish -> committed in DuckDB", n, committed),
        ("publish only, no consumer", n, publish_s),
        (f"DuckDB: Ledger.append, batches of {WRITER_BATCH:,}", n, db["append"]),
        ("DuckDB: build one Arrow table", n, db["arrow"]),
        ("DuckDB: insert it, plain table", n, db["insert"]),
        ("DuckDB: ordered scan, ledger file", n, db["append_scan"]),
        ("DuckDB: ordered scan, plain file", n, db["plain_scan"]),
        ("replay: write the campaign (untimed)", m, rp["write"]),
        ("replay: fold(ledger.events()), end to end", m, rp["fold"]),
        ("  of which DuckDB scan alone", m, rp["scan"]),
        ("  of which decode alone", m, rp["decode"]),
        ("  of which projections alone", m, rp["project"]),
    ):
        detail.add_row(label, f"{count:,}", f"{seconds:.2f}", rate(count, seconds))
    interplay = rp["fold"] - rp["scan"] - rp["decode"] - rp["project"]
    detail.add_row("  and the rest: their interplay", f"{m:,}", f"{interplay:.2f}", "")
    console.print(detail)
    top = lab.campaigns[CAMPAIGN].leaderboard.ranked()[0]
    console.print(
        f"replayed leaderboard, top row: {top.label}  n={top.n}  mean={top.mean:.4f}  best {top.best_run_id}"
    )

    ratio, per_million = publish_s / committed, rp["fold"] * 1_000_000 / m
    summary = table("summary", "figure", "value", "target", "verdict")
    summary.add_row("e2e ingest, events/s", rate(n, committed), "", "")
    summary.add_row("publish only, events/s", rate(n, publish_s), "", "")
    summary.add_row("e2e / publish only", f"{ratio:.2f}", ">= 0.30", "PASS" if ratio >= 0.30 else "MISS")
    summary.add_row("DuckDB Ledger.append, events/s", rate(n, db["append"]), "", "")
    summary.add_row(
        "replay, s per 1M events", f"{per_million:.2f}", "<= 10", "PASS" if per_million <= 10 else "MISS"
    )
    console.print(summary)

    problems = [
        f"{what}: {got:,}, expected {want:,}"
        for what, got, want in (
            ("rows in the ledger after e2e ingest", ingested, n),
            ("ledger writer exit code", writer_code, 0),
            ("messages in the publish-only stream", in_stream, n),
            ("rows in the replay ledger", replay_rows, m),
            ("events folded by the replay", lab.position, m),
        )
        if got != want
    ]
    for problem in problems:
        console.print(f"[red]correctness check failed:[/] {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
