"""A worker that dies for good mid-run: the Supervisor notices its silence and the run is requeued."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from alphalab.campaign import run_campaign
from alphalab.stack import Stack
from shared.events import InterventionIssued, StallDetected
from shared.projections import CampaignView
from shared.settings import Settings


class _KillWorkerForGood:
    """Kills worker-1 (no restart) the first time it is running a proposal; remembers which."""

    def __init__(self) -> None:
        self.stuck: str | None = None

    def __call__(self, stack: Stack, view: CampaignView) -> None:
        if self.stuck is not None:
            return
        for card in view.kanban.cards.values():
            if card.state == "running" and card.worker == "worker-1":
                stack.kill("worker-1", restart=False)
                self.stuck = card.proposal_id
                return


def test_a_dead_workers_run_is_requeued_and_the_campaign_finishes(tmp_path: Path) -> None:
    """The silent worker is flagged, its proposal cancelled and re-proposed, and the replacement runs."""
    hook = _KillWorkerForGood()
    result = run_campaign(
        Settings(home=tmp_path / "lab"),
        "traffic",
        data=None,
        workers=2,
        experiments=3,
        console=Console(quiet=True),
        on_tick=hook,
    )
    view = result.view
    assert hook.stuck is not None
    stalls = [s for _, s in view.stalls]
    orders = [i for _, i in view.interventions]
    assert any(
        isinstance(s, StallDetected) and s.kind == "silent_service" and "worker-1" in s.subject
        for s in stalls
    )
    assert any(
        isinstance(i, InterventionIssued) and (i.action, i.target) == ("requeue", hook.stuck) for i in orders
    )
    assert view.kanban.cards[hook.stuck].state == "cancelled"
    (replacement,) = [c for c in view.kanban.cards.values() if c.replaces == hook.stuck]
    assert replacement.state == "analyzed" and replacement.worker == "worker-2"
    assert view.leaderboard.config_of(replacement.proposal_id) == view.leaderboard.config_of(hook.stuck)
    assert view.status == "finished"
