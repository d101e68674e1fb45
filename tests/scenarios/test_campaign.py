"""A whole campaign through every service as its own process, with each service SIGKILLed once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console

from alphalab.campaign import run_campaign
from alphalab.chaos import Chaos
from shared.events import CampaignFinished, RunFinished
from shared.ledger import Ledger
from shared.projections import snapshot
from shared.replay import fold
from shared.settings import Settings


def test_campaign_survives_every_service_being_killed(tmp_path: Path) -> None:
    """Kill -9 the explorer, a worker mid-run, the strategist, the ledger and the supervisor once each:
    the campaign still finishes, each proposal ends once, none is run to completion twice, and
    replaying the ledger gives exactly the projections the live campaign ended with."""
    settings = Settings(home=tmp_path / "lab", log_level="info")
    chaos = Chaos()
    result = run_campaign(
        settings, "traffic", data=None, workers=2, experiments=6, console=Console(quiet=True), on_tick=chaos
    )
    assert sorted(chaos.killed) == sorted(name for name, _ in Chaos.PLAN)

    with Ledger(settings.ledger_path, read_only=True) as ledger:
        events = list(ledger.events(campaign_id=result.campaign_id))
    view = fold(events).campaigns[result.campaign_id]
    assert snapshot(view) == snapshot(result.view)

    cards = view.kanban.cards.values()
    assert cards and all(card.state in {"analyzed", "cancelled"} for card in cards)
    completions = Counter(e.payload.proposal_id for e in events if isinstance(e.payload, RunFinished))
    assert completions and max(completions.values()) == 1
    assert sum(isinstance(e.payload, CampaignFinished) for e in events) == 1
    assert view.budget.experiments >= 6

    document = json.loads((result.folder / "projections.json").read_text())
    assert document == json.loads(json.dumps(snapshot(view)))
    assert (result.folder / "report.md").read_text().strip()
    assert len(list((result.folder / "plots").glob("*.png"))) >= 3
    assert (result.folder / "progress.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
