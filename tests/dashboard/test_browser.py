"""The dashboard in a real headless Chromium, watching a real campaign live and then auditing its ledger."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from shared.ledger import Ledger
from shared.nats_server import EmbeddedNats
from tests.conftest import service_env
from tests.dashboard.conftest import ALPHALAB, CHROMIUM, Dashboard

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
            expect(page.locator("#as-of")).to_have_text(f"as of event {position}")
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
