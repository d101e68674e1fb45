"""`alphalab run --brain llm` end to end: the real CLI, services, nats-server, sandbox and harness, and
the real anthropic and openai SDKs talking to a local WireServer that plays the models (scripted_lab).

One campaign shows most of the issue at once: a scripted Worker (on OpenAI) writes a new module and
edits the entry point, the harness grades it and it reaches the leaderboard keyed by its code; a
scripted Worker that cheats is graded honestly; the Strategist (on Anthropic) writes the playbook;
and the planted API key is found in no file the lab wrote.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from alphalab.chaos import verify
from shared import bundles
from shared.blobs import BlobStore, digest_of
from shared.domain import load_domain
from shared.events import AgentTurn, LlmCallFinished, RunFinished
from shared.ledger import Ledger
from shared.nats_server import EmbeddedNats
from shared.settings import Settings
from tests.dashboard.conftest import CHROMIUM, Dashboard
from tests.llm.wire import WireServer
from tests.scenarios.scripted_lab import CHEAT, HONEST, lab_script, slow_implement

ALPHALAB = str(Path(sys.executable).parent / "alphalab")
KEY = "sk-PLANTED-" + secrets.token_hex(12)
MODELS = "strategist=anthropic:claude-opus-4-6,worker=openai:gpt-5.2"


def _env(server: WireServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHALAB_", "ANTHROPIC_", "OPENAI_"))}
    env.update(
        ANTHROPIC_API_KEY=KEY,
        OPENAI_API_KEY=KEY,
        ANTHROPIC_BASE_URL=server.url,
        OPENAI_BASE_URL=server.url + "/v1",
    )
    return env


def _run(
    server: WireServer, home: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    command = [ALPHALAB, "run", "--domain", "traffic", "--brain", "llm", "--llm", MODELS, "--home", str(home)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, env=_env(server)
    )


def _events(home: Path) -> list[Any]:
    with Ledger(home / "ledger.duckdb", read_only=True) as ledger:
        return list(ledger.events())


def _bundle(home: Path, digest: str) -> dict[str, str]:
    async def fetch(url: str) -> bytes:
        from shared.bus import Bus
        from shared.events import Producer

        bus = await Bus.connect(url, Producer(service="test", instance="bundle"))
        try:
            return await BlobStore(bus.js).get(digest)
        finally:
            await bus.close()

    with EmbeddedNats(home / "nats") as server:
        return bundles.files_of(asyncio.run(fetch(server.url)))


def _files_holding(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.timeout(900)
def test_models_write_code_that_the_harness_grades_and_a_cheat_gains_nothing(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    with WireServer(lab_script, api_key=KEY) as server:
        done = _run(server, home, "--experiments", "5", "--workers", "2")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [folder] = (home / "campaigns").iterdir()
    view = json.loads((folder / "projections.json").read_text())
    events = _events(home)
    proposals = {e.payload.proposal_id: e.payload for e in events if e.type == "proposal-created"}
    honest = next(pid for pid, p in proposals.items() if p.change == HONEST)
    cheat = next(pid for pid, p in proposals.items() if p.change == CHEAT)
    graded = {e.payload.proposal_id: e.payload for e in events if isinstance(e.payload, RunFinished)}

    # The honest change: a new module and an edited entry point, graded, on the leaderboard by its code.
    result = graded[honest]
    domain = load_domain("traffic")
    base = digest_of(bundles.pack(domain.root, domain.candidate_files()))
    assert result.code_digest is not None and result.parent_digest == base  # the adapter's own, stored
    files = _bundle(home, result.code_digest)
    assert "calendar_features.py" in files and "hour_of_day" in files["candidate.py"]
    [row] = [r for r in view["leaderboard"]["rows"] if r["code_digest"] == result.code_digest]
    assert result.run_id in row["run_ids"] and row["label"].startswith("code ")

    # The cheat: its metrics file, printed score and escape attempt change nothing; graded honestly.
    cheated = graded[cheat]
    assert cheated.value > 1.0, "a planted perfect score must not be the grade"
    cheat_files = _bundle(home, cheated.code_digest or "")
    assert "metrics.json" not in cheat_files and set(cheat_files) == {"candidate.py", "families.py"}
    cheat_turns = [
        e.payload for e in events if isinstance(e.payload, AgentTurn) and e.payload.agent.startswith(cheat)
    ]
    assert cheat_turns and all(t.ended == "reported" for t in cheat_turns if t.purpose == "implement")

    # The strategist ran on Anthropic, the workers on OpenAI, and every call was counted.
    calls = [e.payload for e in events if isinstance(e.payload, LlmCallFinished)]
    assert {(c.role, c.provider) for c in calls} == {("strategist", "anthropic"), ("worker", "openai")}
    assert server.posted("/v1/messages") and server.posted("/v1/chat/completions")
    assert view["budget"]["llm_calls"] == len(calls) and view["budget"]["usd"] > 0
    # The malformed call was answered with an error the model could read, and the turn went on.
    second = server.posted("/v1/messages")[1]
    answered = [
        b for m in second["messages"] for b in m["content"] if isinstance(b, dict) and b.get("is_error")
    ]
    assert answered, "the malformed propose_experiment was not answered with an error"
    # The strategist wrote the playbook, citing runs.
    assert view["playbook"]["revision"] >= 1
    assert any(lesson["run_ids"] for lesson in view["playbook"]["lessons"])

    # What the operator reads: spend, and the transcripts.
    env = _env(server)
    cost = subprocess.run([ALPHALAB, "cost", "--home", str(home)], capture_output=True, text=True, env=env)
    assert cost.returncode == 0 and "strategist" in cost.stdout and "openai:gpt-5.2" in cost.stdout
    shown = subprocess.run(
        [ALPHALAB, "transcript", honest, "--home", str(home)], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0 and "calendar_features.py" in shown.stdout, shown.stderr[-2000:]
    changed = subprocess.run(
        [ALPHALAB, "diff", result.run_id, "--home", str(home)], capture_output=True, text=True, env=env
    )
    assert "+++ b/calendar_features.py" in changed.stdout and "+from calendar_features" in changed.stdout

    # The same, in the dashboard's audit of the ledger and campaign folder (a real headless Chromium).
    if CHROMIUM is not None:
        _dashboard_shows_the_transcript_and_the_diff(home, view["campaign_id"], honest, result.run_id)

    # The key: in no log, event, blob, transcript or projection (only ever in the requests' headers).
    assert not _files_holding(home, KEY.encode())
    assert all(KEY.encode() not in r.body for r in server.requests)


def _dashboard_shows_the_transcript_and_the_diff(
    home: Path, campaign_id: str, proposal: str, run_id: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with Dashboard(home) as dashboard, sync_playwright() as playwright:
        page = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"]).new_page()
        page.goto(f"{dashboard.url}/#/campaign/{campaign_id}")
        page.locator("#turns tbody tr", has_text="implement").filter(has_text=run_id).first.click()
        expect(page.locator("#card-body pre.transcript")).to_contain_text("calendar_features.py")
        page.locator("#close-card").click()
        page.locator(f'[data-column=analyzed] [data-card="{proposal}"]').click()
        expect(page.locator("#card-body .debrief").first).to_contain_text("the harness's value decides")
        page.locator(f'[data-code="{run_id}"]').click()
        expect(page.locator("#card-body pre.diff .add").first).to_be_visible()
        expect(page.locator("#card-body pre.diff")).to_contain_text(
            "+from calendar_features import hour_of_day"
        )
        expect(page.locator("#playbook a.run").first).to_be_visible()  # lessons link to the runs they cite
        expect(page.locator("#report pre")).to_contain_text("Data report")
        expect(page.locator("#timeline [data-series=usd]")).to_have_count(1)  # the models' spend over time


@pytest.mark.timeout(600)
def test_the_dollar_cap_ends_the_campaign(tmp_path: Path) -> None:
    config = tmp_path / "campaign.toml"
    config.write_text(
        '[prices."anthropic:claude-opus-4-6"]\ninput = 2000.0\noutput = 10000.0\n'
        '[prices."openai:gpt-5.2"]\ninput = 2000.0\noutput = 10000.0\n[budget]\nmax_usd = 1.0\n'
    )
    home = tmp_path / "lab"
    with WireServer(lab_script, api_key=KEY) as server:
        done = _run(server, home, "--experiments", "10", "--workers", "1", "--config", str(config))
    assert "USD budget of $1 spent" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    events = _events(home)
    exhausted = [e.payload for e in events if e.type == "budget-exhausted"]
    assert [(b.budget, b.limit) for b in exhausted] == [("usd", 1.0)]
    assert not [e for e in events if e.type == "run-finished"], "no experiment may be graded past the cap"


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_turn_leaves_nothing_doubled(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    with WireServer(slow_implement(2.0), api_key=KEY) as server:
        env = _env(server)
        command = [ALPHALAB, "run", "--domain", "traffic", "--brain", "llm", "--llm", MODELS]
        cli = subprocess.Popen(
            [*command, "--experiments", "4", "--workers", "2", "--home", str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 400
        while not _implementing(server):
            assert cli.poll() is None and time.monotonic() < deadline, "no worker turn began"
            time.sleep(0.2)
        killed = _kill_workers(home)
        assert killed, "no worker process found to kill"
        output, _ = cli.communicate(timeout=700)
    assert cli.returncode == 0, output.decode()[-4000:]
    [folder] = (home / "campaigns").iterdir()
    live = json.loads((folder / "projections.json").read_text())
    failures, events = verify(Settings(home=home), folder.name, live)
    assert not failures, failures
    honest = next(
        e.payload.proposal_id for e in events if e.type == "proposal-created" and e.payload.change == HONEST
    )
    counted = [e for e in events if isinstance(e.payload, RunFinished) and e.payload.proposal_id == honest]
    card = live["kanban"]["cards"][honest]
    assert len(card["run_ids"]) >= 2, "the killed attempt must be superseded by a new one"
    assert len([e for e in counted if e.payload.run_id == card["run_ids"][-1]]) <= 1


def _implementing(server: WireServer) -> bool:
    return any(
        "shell_exec" in r.body.decode(errors="replace") and HONEST in r.body.decode(errors="replace")
        for r in server.requests
    )


def _kill_workers(home: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"ALPHALAB_HOME={home}".encode() in environ and any(
            v.startswith(b"ALPHALAB_INSTANCE=worker-") for v in environ
        ):
            os.kill(int(proc.name), signal.SIGKILL)
            pids.append(int(proc.name))
    return pids
