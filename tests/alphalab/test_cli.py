"""The `alphalab` command, driven as an operator would: real processes, real NATS, a real ledger file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from alphalab.cli import main
from shared.bus import Bus
from shared.events import Event, Lesson, PlaybookRevised, Producer, payload_types
from shared.projections import snapshot
from shared.replay import fold
from tests.conftest import ROOT, wait_for
from tests.factories import event, small_campaign

_ALPHALAB = str(Path(sys.executable).parent / "alphalab")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=" ".join)
def test_every_command_explains_itself(path: tuple[str, ...]) -> None:
    """`--help` on every command prints its usage and a description."""
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: main {' '.join(path)}" in result.output
    assert len(result.output.splitlines()) > 3


def test_schema_export_writes_one_schema_per_event_type(tmp_path: Path) -> None:
    """`events schema --out` writes a JSON Schema per registered type and an index."""
    result = CliRunner().invoke(main, ["events", "schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "index.json").read_text())
    assert set(index["types"]) == set(payload_types())
    schema = json.loads((tmp_path / "run-finished.schema.json").read_text())
    assert schema["properties"]["type"]["const"] == "run-finished"
    assert "value" in json.dumps(schema["$defs"]["RunFinished"])


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_ALPHALAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or _env(),
        cwd=ROOT,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    env.update(extra)
    return env


def test_unreachable_nats_url_is_one_clear_line(tmp_path: Path) -> None:
    """`up` with an ALPHALAB_NATS_URL nobody listens on says so in one line and exits 2."""
    result = _cli("up", "--home", str(tmp_path), env=_env(ALPHALAB_NATS_URL="nats://127.0.0.1:9"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach NATS at nats://127.0.0.1:9")


def test_misspelt_setting_is_refused_by_name(tmp_path: Path) -> None:
    """An unknown ALPHALAB_* variable is refused, naming it, before anything starts."""
    result = _cli("replay", "--home", str(tmp_path), env=_env(ALPHALAB_NAST_URL="nats://x"))
    assert result.returncode == 2
    assert "ALPHALAB_NAST_URL" in result.stderr


def test_replay_without_a_ledger_says_where_it_looked(tmp_path: Path) -> None:
    """Replaying a home that has no ledger names the missing file."""
    result = _cli("replay", "--home", str(tmp_path))
    assert result.returncode == 2
    assert str(tmp_path / "ledger.duckdb") in result.stderr


def test_up_records_a_campaign_that_replay_and_dump_give_back(tmp_path: Path) -> None:
    """Start the lab, publish a campaign and stop: replay, leaderboard, playbook and dump give it back."""
    home = tmp_path / "lab"
    up = subprocess.Popen(
        [_ALPHALAB, "up", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        url = _read_url(up)
        sent = small_campaign("c1", runs=3) + [
            event(
                PlaybookRevised(revision=1, lessons=(Lesson(text="smaller lr wins", run_ids=("r0",)),)),
                "c1",
                60,
            )
        ]
        other = small_campaign("c2", runs=1)
        asyncio.run(_publish_and_wait(url, sent + other))
    finally:
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=30)
    assert up.returncode == 0, output

    replayed = json.loads(_cli("replay", "--home", str(home), "--json").stdout)
    assert replayed["position"] == len(sent) + len(other)
    assert replayed["campaigns"]["c1"] == snapshot(fold(sent).campaigns["c1"])

    board = _cli("leaderboard", "--home", str(home), "--campaign", "c1").stdout
    order = [board.index(label) for label in ("lr=0", "lr=1", "lr=2", "last-value")]
    assert order == sorted(order), board  # minimize: the lowest mean first, the baseline (10.0) last
    assert "smaller lr wins" in _cli("playbook", "--home", str(home), "--campaign", "c1").stdout

    dumped = _cli("events", "dump", "--home", str(home), "--campaign", "c1", "--type", "run-finished").stdout
    lines = [json.loads(line) for line in dumped.splitlines()]
    assert [line["payload"]["run_id"] for line in lines] == ["r0", "r1", "r2"]
    since = _cli("events", "dump", "--home", str(home), "--since", "2026-01-01T00:00:04").stdout
    assert {json.loads(line)["payload"].get("run_id") for line in since.splitlines()} >= {"r1", "r2"}
    assert all(json.loads(line)["occurred_at"] >= "2026-01-01T00:00:04" for line in since.splitlines())


def _read_url(up: subprocess.Popen[str]) -> str:
    assert up.stdout is not None
    for _ in range(50):
        line = up.stdout.readline()
        if line.startswith("NATS"):
            return line.split()[1]
    raise AssertionError("`alphalab up` did not print its NATS URL")


async def _publish_and_wait(url: str, events: list[Event]) -> None:
    bus = await Bus.connect(url, Producer(service="test", instance="cli"))
    try:
        await bus.publish_many(events)
        await wait_for(lambda: bus.consumer_caught_up("ledger"), 30, "the ledger to store the campaign")
    finally:
        await bus.close()
