"""The chaos suite: a real traffic campaign while every service is SIGKILLed several times (mid-run and
mid-Phase 2 included), the NATS server is SIGKILLed and restarted at least twice, and a worker is
SIGSTOPped past its heartbeat's TTL and then resumed. Nothing may be lost, doubled or miscounted."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from alphalab.campaign import run_campaign
from alphalab.chaos import NATS, ChaosMonkey, verify
from shared.projections import snapshot
from shared.settings import Settings


@pytest.mark.timeout(900)
def test_a_campaign_survives_the_chaos_monkey(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "lab", log_level="info")
    monkey = ChaosMonkey(seconds=60.0, seed=1)
    result = run_campaign(
        settings, "traffic", data=None, workers=2, experiments=8, console=Console(quiet=True), on_tick=monkey
    )
    failures, events = verify(settings, result.campaign_id, snapshot(result.view))
    print("\n" + "\n".join(monkey.report(events, result.view)))
    assert not failures, failures
    assert monkey.kills[NATS] >= 2 and monkey.nats_restarts >= 2
    for service in ("explorer", "strategist", "supervisor", "ledger", "worker-1"):
        assert monkey.kills[service] >= 1, f"{service} was never killed"
    assert monkey.stopped == ["worker-2"]
    assert result.view.leaderboard.history, "the campaign graded experiments"
