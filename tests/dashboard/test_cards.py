"""A kanban card in full: each attempt's log tail and debrief, as the run's events gave them."""

from __future__ import annotations

from dashboard import cards, pages
from shared.events import CampaignStarted, ProposalCreated, RunAnalyzed, RunFailed, RunFinished, RunStarted
from shared.replay import fold
from tests.factories import event


def test_a_card_shows_each_attempts_log_tail_and_debrief() -> None:
    events = [
        event(CampaignStarted(domain="toy", objective="o", metric="mae", direction="minimize")),
        event(ProposalCreated(proposal_id="p1", config={"lr": 0.1}), second=1),
        event(RunStarted(run_id="p1-1", proposal_id="p1", worker="w1"), second=2),
        event(
            RunFailed(run_id="p1-1", proposal_id="p1", error="fit: exit 1", log_tail="Traceback: boom"),
            second=3,
        ),
        event(RunStarted(run_id="p1-2", proposal_id="p1", worker="w2"), second=4),
        event(
            RunFinished(run_id="p1-2", proposal_id="p1", value=1.5, log_tail="epoch 3 loss 0.12"), second=5
        ),
        event(
            RunAnalyzed(run_id="p1-2", proposal_id="p1", verdict="improved", debrief="lr 0.1 converges"),
            second=6,
        ),
    ]
    details = cards.Details()
    for e in events:
        details = cards.evolve(details, e)
    shown = pages.card(fold(events).campaigns["c1"], details.campaigns["c1"]["p1"])
    failed, finished = shown["attempts"]
    assert (failed["error"], failed["log_tail"], failed["debrief"]) == ("fit: exit 1", "Traceback: boom", "")
    assert (finished["log_tail"], finished["debrief"]) == ("epoch 3 loss 0.12", "lr 0.1 converges")
