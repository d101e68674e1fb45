"""The dashboard in a real headless Chromium: watching a real campaign live and then auditing its ledger;
picking an earlier event on a campaign that goes on meanwhile; reading a run's highlighted code."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from alphalab.artifacts import blob_file
from shared.blobs import digest_of
from shared.events import (
    AgentTurn,
    BaselineEvaluated,
    CampaignStarted,
    Event,
    Lesson,
    PlaybookRevised,
    ProposalCreated,
    RunFinished,
    RunStarted,
)
from shared.ledger import Ledger
from shared.nats_server import EmbeddedNats
from tests.conftest import service_env
from tests.dashboard.conftest import ALPHALAB, CHROMIUM, Dashboard, publish
from tests.factories import event

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="install Debian's chromium (apt-get install chromium)"
)
_WAIT_MS = 240_000


def _campaign_id(dashboard: Dashboard) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = httpx.get(f"{dashboard.url}/api/campaigns").json()["campaigns"]
        if listed:
            return str(listed[0]["campaign_id"])
        time.sleep(0.2)
    raise AssertionError("no campaign appeared on the dashboard within 60 s")


def _count(page: Page, event_type: str) -> int:
    return page.locator("#log li .type", has_text=event_type).count()


def _leaderboard(page: Page) -> list[str]:
    return page.locator("#leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.label)")


def test_watch_a_campaign_live_travel_back_in_time_then_audit_it_from_the_ledger(
    nats_server: EmbeddedNats, home: Path, tmp_path: Path
) -> None:
    run = ["run", "--domain", "traffic", "--experiments", "4", "--workers", "1"]
    with (home / "campaign.log").open("wb") as log:
        campaign = subprocess.Popen(
            [ALPHALAB, *run], env=service_env(nats_server.url, home), stdout=log, stderr=log
        )
    try:
        with (
            Dashboard(home, "--user", "ada", nats_url=nats_server.url) as dashboard,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(dashboard.url + "/")  # opened early: the campaign's row is pushed when it starts
            campaign_id = _campaign_id(dashboard)
            page.locator(f'tr[data-campaign="{campaign_id}"]').click()
            expect(page.locator("#connection")).to_have_text("live")

            running = page.locator("[data-column=running] [data-card]").first
            running.wait_for(timeout=_WAIT_MS)
            proposal = running.get_attribute("data-card")
            before = _leaderboard(page)
            analyzed = page.locator(f'[data-column=analyzed] [data-card="{proposal}"]')
            analyzed.wait_for(timeout=_WAIT_MS)
            expect(page.locator("#leaderboard tbody tr")).not_to_have_count(len(before))
            assert len(_leaderboard(page)) > len(before) and {"last-value", "historical-average"} <= set(
                before
            )

            analyzed.click()
            expect(page.locator("#card-body")).to_contain_text("Attempts")
            expect(page.locator("#card-body")).to_contain_text("analyzed")
            page.locator("#close-card").click()

            # Pause: no run starts until it is resumed; the page says who paused it.
            page.locator("#reason").fill("checking the GPU")
            page.locator("#pause").click()
            expect(page.locator("[data-field=paused] b")).to_have_text("by ada: checking the GPU")
            time.sleep(1.0)  # a worker that took its proposal just before the pause may still start it
            starts = _count(page, "run-started")
            time.sleep(4.0)
            assert _count(page, "run-started") == starts
            page.locator("#resume").click()
            expect(page.locator("[data-field=paused]")).to_have_count(0)

            # Cancel a card that has not finished: it ends in the cancelled column.
            waiting = page.locator(
                "[data-column=proposed] [data-card], [data-column=running] [data-card]"
            ).first
            waiting.wait_for(timeout=_WAIT_MS)
            cancelled = waiting.get_attribute("data-card")
            waiting.click()
            page.locator("#cancel-card").click()
            expect(page.locator("#action-result")).to_have_text("proposal-cancelled by ada")
            page.locator("#close-card").click()
            expect(page.locator(f'[data-column=cancelled] [data-card="{cancelled}"]')).to_have_count(1)

            started = page.locator("#log li", has_text="run-started").filter(has_text=f'"{proposal}"')
            position = started.first.get_attribute("data-position")
            page.locator("#travel-at").fill(str(position))
            page.locator("#travel-at").press("Enter")
            expect(page.locator("#as-of")).to_have_text(re.compile(rf"^as of event {position}, "))
            expect(page.locator(f'[data-column=running] [data-card="{proposal}"]')).to_have_count(1)
            expect(page.locator(f'[data-column=analyzed] [data-card="{proposal}"]')).to_have_count(0)
            page.locator("#live").click()
            expect(page.locator(f'[data-column=analyzed] [data-card="{proposal}"]')).to_have_count(1)

            assert campaign.wait(_WAIT_MS / 1000) == 0, (home / "campaign.log").read_text()[-3000:]
            expect(page.locator("[data-field=status] b")).to_have_text("finished", timeout=30_000)
            live_rows = _leaderboard(page)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        with Dashboard(home) as audit, sync_playwright() as playwright:  # no NATS: the ledger alone
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{audit.url}/#/campaign/{campaign_id}")
            expect(page.locator("[data-field=status] b")).to_have_text("finished")
            expect(page.locator("#connection")).to_have_text("from the ledger")
            assert _leaderboard(page) == live_rows
            expect(page.locator("#progress [data-series=best]")).to_have_count(1)
            for phase in ("explore", "harness", "experiment"):
                expect(page.locator(f"#timeline [data-phase={phase}]")).to_have_count(1)
            assert "from the ledger" in audit.log.read_text()
            expect(page.locator("#actions")).to_be_hidden()  # an audit only reads
        with Ledger(home / "ledger.duckdb", read_only=True) as ledger:
            acted = {(e.type, getattr(e.payload, "proposal_id", None)): e.payload for e in ledger.events()
                     if getattr(e.payload, "by", "")}  # fmt: skip
        assert acted[("campaign-paused", None)].reason == "checking the GPU"
        assert acted[("proposal-cancelled", cancelled)].by == acted[("campaign-resumed", None)].by == "ada"
    finally:
        if campaign.poll() is None:
            campaign.kill()


_XSS = '</pre><script>window.pwned=1</script><img src=x onerror="window.pwned=1">'


def _store(home: Path, kind: str, data: bytes) -> str:
    """A blob put where the dashboard reads a campaign's files first: its folder (c1's)."""
    digest = digest_of(data)
    path = blob_file(home / "campaigns" / "c1", kind, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _candidate(home: Path, files: dict[str, str]) -> str:
    return _store(home, "candidates", json.dumps({"format": 1, "files": files}, sort_keys=True).encode())


def _transcript(home: Path, summary: str) -> str:
    counts = ("model_calls", "tool_calls", "input_tokens", "output_tokens", "cached_tokens")
    document = {
        "role": "strategist",
        "agent": "strategist",
        "model": "scripted",
        "ended": "reported",
        "ended_by": "",
        "summary": summary,
        "system": "plan the next experiments",
        "calls": [],
        "compactions": [],
        "messages": [{"role": "user", "blocks": [{"type": "text", "text": summary}]}],
        "totals": dict.fromkeys(counts, 0) | {"seconds": 1.0, "overhead_seconds_per_call": 0.0},
    }
    return _store(home, "transcripts", json.dumps(document).encode())


def _turn(home: Path, turn: int) -> AgentTurn:
    summary = f"plan {turn}"
    return AgentTurn(
        role="strategist", turn=turn, summary=summary, transcript_digest=_transcript(home, summary)
    )


def _run(
    proposal: str, value: float, code: str, parent: str
) -> list[ProposalCreated | RunStarted | RunFinished]:
    run = f"{proposal}-1"
    return [
        ProposalCreated(
            proposal_id=proposal, config={"lags": 24, "step": proposal}, change="add a trend term"
        ),
        RunStarted(run_id=run, proposal_id=proposal, worker="worker-1"),
        RunFinished(run_id=run, proposal_id=proposal, value=value, code_digest=code, parent_digest=parent),
    ]


def _campaign(home: Path) -> list[Event]:
    """Event k at second k: a plan, a run with code, a lesson, a second plan and a run whose code (in a
    file named like markup) holds markup that would run if it were injected unescaped."""
    signature = "def predict(history):\n"
    own = _candidate(home, {"model.py": signature + "    return history[-1]\n"})
    trend = '    """Last value plus the trend."""\n    return history[-1] + (history[-1] - history[-2])\n'
    first = _candidate(home, {"model.py": signature + trend})
    marked = f'    """{_XSS}"""\n    return 2 * history[-1]\n'
    second = _candidate(
        home, {"model.py": signature + marked, "<img src=x onerror=window.pwned=1>.html": _XSS + "\n"}
    )
    payloads = [
        CampaignStarted(domain="toy", objective="forecast", metric="mae", direction="minimize", brain="llm"),
        BaselineEvaluated(name="last-value", value=10.0),
        _turn(home, 1),
        *_run("p000", 6.0, first, own),
        PlaybookRevised(revision=1, lessons=(Lesson(text="a trend term helps", run_ids=("p000-1",)),)),
        _turn(home, 2),
        *_run("p001", 4.0, second, first),
    ]
    return [event(payload, "c1", position) for position, payload in enumerate(payloads, start=1)]


def test_pick_an_earlier_event_while_the_campaign_goes_on_then_read_a_runs_highlighted_code(
    nats_server: EmbeddedNats, home: Path, tmp_path: Path
) -> None:
    publish(nats_server.url, _campaign(home))  # positions 1-11
    with Dashboard(home, nats_url=nats_server.url) as dashboard, sync_playwright() as playwright:
        api = f"{dashboard.url}/api/campaigns/c1"
        assert len(httpx.get(f"{api}/turns?at=6").json()["turns"]) == 1  # the routes travel too
        assert httpx.get(f"{api}/runs/p001-1/code?at=6").status_code == 404  # not run yet
        assert httpx.get(f"{api}?time=2026-01-01T00:00:08").json()["position"] == 8  # a time is UTC

        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{dashboard.url}/#/campaign/c1")
        finished, rows = (
            page.locator("[data-column=finished] [data-card]"),
            page.locator("#leaderboard tbody tr"),
        )
        turns, revisions = page.locator("#turns tbody tr"), page.locator("#playbook-history > li")
        expect(page.locator("#as-of")).to_have_text("now: event 11, 2026-01-01 00:00:11 UTC")
        expect(finished).to_have_count(2)
        expect(turns).to_have_count(2)
        expect(page.locator("#live")).to_be_hidden()
        live_rows = rows.count()

        page.locator("#travel-time").fill("2026-01-01T00:00:08")  # the last event by then: 8
        expect(page.locator("#as-of")).to_have_text("as of event 8, 2026-01-01 00:00:08 UTC")
        expect(finished).to_have_count(1)
        expect(turns).to_have_count(2)
        page.locator("#travel").fill("6")  # the slider: after the first run, before the lesson and plan 2
        expect(page.locator("#as-of")).to_have_text("as of event 6, 2026-01-01 00:00:06 UTC")
        expect(page.locator("#travel-at")).to_have_value("6")
        expect(finished).to_have_count(1)
        expect(rows).to_have_count(live_rows - 1)
        expect(turns).to_have_count(1)
        expect(revisions).to_have_count(0)
        expect(page.locator("#log li.later")).to_have_count(5)
        assert page.url.endswith("#/campaign/c1@6")  # a link to the historical view
        shared = browser.new_page(viewport={"width": 1400, "height": 1000})
        shared.goto(page.url)
        expect(shared.locator("#as-of")).to_have_text("as of event 6, 2026-01-01 00:00:06 UTC")
        expect(shared.locator("[data-column=finished] [data-card]")).to_have_count(1)
        shared.close()
        turns.first.click()
        expect(page.locator("#card-body")).to_contain_text("summary: plan 1")
        page.locator("#close-card").click()

        # The campaign goes on: the live page follows it, and the historical view stays as it is.
        publish(
            nats_server.url,
            [
                event(_turn(home, 3), "c1", 12),
                event(ProposalCreated(proposal_id="p002", config={}), "c1", 13),
            ],
        )
        expect(page.locator("#live")).to_have_text("Back to live (event 13)")
        expect(page.locator("#as-of")).to_have_text("as of event 6, 2026-01-01 00:00:06 UTC")
        expect(page.locator("[data-column=proposed] [data-card]")).to_have_count(0)
        expect(turns).to_have_count(1)

        page.locator("#live").click()  # caught up: what came meanwhile is there
        expect(page.locator("#as-of")).to_have_text("now: event 13, 2026-01-01 00:00:13 UTC")
        assert page.url.endswith("#/campaign/c1")
        expect(page.locator('[data-column=proposed] [data-card="p002"]')).to_have_count(1)
        expect(finished).to_have_count(2)
        expect(turns).to_have_count(3)
        expect(revisions).to_have_count(1)
        expect(page.locator("#log li.later")).to_have_count(0)

        # The second run's code: tokens in Pygments' spans, and the markup in it shown as text.
        page.locator("#log li[data-position='11']").click()  # a log line travels to its event
        expect(page.locator("#as-of")).to_have_text(re.compile(r"^as of event 11, "))
        page.locator('[data-card="p001"]').click()
        page.locator("[data-code='p001-1']").click()
        body = page.locator("#card-body")
        expect(body.locator("h3")).to_have_text("Code of p001-1")
        body.locator("[data-file='model.py'] summary").click()
        expect(body.locator("[data-file='model.py'] pre.code .k").first).to_have_text("def")
        expect(body.locator("pre.diff .same .k").first).to_have_text("def")
        expect(body.locator("pre.diff .del")).to_have_count(2)
        expect(body.locator("pre.diff .del .k")).to_have_text(["return"])
        expect(body.locator("[data-file='model.py'] pre.code")).to_contain_text(_XSS)
        expect(body.locator("summary", has_text="<img src=x onerror=window.pwned=1>.html")).to_have_count(1)
        expect(body.locator("script, img")).to_have_count(0)
        assert page.evaluate("typeof window.pwned") == "undefined"
        page.screenshot(path=str(tmp_path / "travelled.png"), full_page=True)
