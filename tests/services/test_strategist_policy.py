"""The builtin Strategist's decisions, as a pure function of a campaign's events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.strategist.policy import decide
from shared.events import (
    BaselineEvaluated,
    BudgetLimits,
    CampaignFinished,
    CampaignStarted,
    ExplorationFinished,
    InterventionIssued,
    Payload,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    RunAnalyzed,
    RunFinished,
    RunStarted,
)
from shared.projections import CampaignView, Lab, evolve
from tests.factories import EPOCH, event


@dataclass
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    when: dict[str, list[Any]] = field(default_factory=dict)


SPACE = [Param("model", "categorical", choices=["a", "b"]), Param("x", "float", 0.0, 1.0)]


def _view(*payloads: Payload, budget: BudgetLimits | None = None) -> CampaignView:
    start = CampaignStarted(
        domain="toy",
        objective="o",
        metric="mae",
        direction="minimize",
        budget=budget or BudgetLimits(max_experiments=10),
    )
    lab = Lab()
    for second, payload in enumerate(
        [start, BaselineEvaluated(name="naive", value=10.0), ExplorationFinished(), *payloads]
    ):
        lab = evolve(lab, event(payload, "c1", second))
    return lab.campaigns["c1"]


def _completed(pid: str, value: float, config: dict[str, Any] | None = None) -> list[Payload]:
    run = f"{pid}-1"
    return [
        ProposalCreated(proposal_id=pid, config=config or {"model": "a", "x": value / 100}),
        RunStarted(run_id=run, proposal_id=pid, worker="w"),
        RunFinished(run_id=run, proposal_id=pid, value=value),
        RunAnalyzed(run_id=run, proposal_id=pid, verdict="improved"),
    ]


def test_nothing_is_proposed_before_exploration_finishes() -> None:
    """Proposals wait for the explorer (and its baselines)."""
    lab = evolve(
        Lab(), event(CampaignStarted(domain="toy", objective="o", metric="m", direction="minimize"), "c1")
    )
    assert decide(lab.campaigns["c1"], SPACE, workers=2, now=EPOCH) == []


def test_first_decision_keeps_every_worker_busy_plus_one() -> None:
    """With two idle workers, the first batch is three proposals after the phase starts."""
    decisions = decide(_view(), SPACE, workers=2, now=EPOCH)
    assert decisions[0].key == "phase-experiment-started"
    proposals = [d.payload for d in decisions if isinstance(d.payload, ProposalCreated)]
    assert [p.proposal_id for p in proposals] == ["p001", "p002", "p003"]
    assert all(set(p.config) == {"model", "x"} for p in proposals)


def test_open_proposals_count_against_the_batch() -> None:
    """Three open proposals and two workers: nothing more to propose."""
    open_ones = [ProposalCreated(proposal_id=f"p00{i}", config={"model": "a", "x": 0.1}) for i in (1, 2, 3)]
    assert decide(_view(*open_ones), SPACE, workers=2, now=EPOCH) == []


def test_experiment_budget_finishes_the_campaign_once_all_ran() -> None:
    """When the budget is spent and nothing is open, the campaign finishes naming the best run."""
    payloads = [p for i, v in enumerate([3.0, 2.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads, budget=BudgetLimits(max_experiments=2)), SPACE, workers=1, now=EPOCH)
    finished = [d.payload for d in decisions if isinstance(d.payload, CampaignFinished)]
    assert len(finished) == 1 and "experiment budget" in finished[0].reason
    assert finished[0].best_run_id == "p002-1"


def test_time_budget_cancels_open_proposals_and_finishes() -> None:
    """Past the wall-clock budget, open proposals are cancelled and the campaign ends."""
    view = _view(
        ProposalCreated(proposal_id="p001", config={"model": "a", "x": 0.1}),
        budget=BudgetLimits(max_wall_seconds=60),
    )
    decisions = decide(view, SPACE, workers=1, now=EPOCH + timedelta(seconds=61))
    kinds = [type(d.payload).__name__ for d in decisions]
    assert kinds[0] == "ProposalCancelled" and kinds[-1] == "CampaignFinished"


def test_patience_stops_a_campaign_that_stopped_improving() -> None:
    """No new best in `patience` graded runs ends the campaign."""
    payloads = [p for i, v in enumerate([1.0, 2.0, 3.0, 4.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads, budget=BudgetLimits(patience=3)), SPACE, workers=1, now=EPOCH)
    assert any(
        isinstance(d.payload, CampaignFinished) and "no new best" in d.payload.reason for d in decisions
    )


def test_requeue_cancels_the_stuck_proposal_and_proposes_its_config_again() -> None:
    """A requeue order becomes a cancellation plus a replacement with the same configuration."""
    view = _view(
        ProposalCreated(proposal_id="p001", config={"model": "b", "x": 0.5}),
        RunStarted(run_id="p001-1", proposal_id="p001", worker="w"),
        InterventionIssued(action="requeue", target="p001", reason="silent worker"),
    )
    decisions = decide(view, SPACE, workers=0, now=EPOCH)
    cancelled = [d.payload for d in decisions if isinstance(d.payload, ProposalCancelled)]
    replacement = [
        d.payload for d in decisions if isinstance(d.payload, ProposalCreated) and d.payload.replaces
    ]
    assert [c.proposal_id for c in cancelled] == ["p001"]
    assert replacement[0].config == {"model": "b", "x": 0.5} and replacement[0].replaces == "p001"


def test_playbook_is_revised_after_a_batch_of_results_citing_runs() -> None:
    """Three results give revision 1, whose lessons cite run ids."""
    payloads = [p for i, v in enumerate([3.0, 2.0, 12.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads), SPACE, workers=1, now=EPOCH)
    revised = [d.payload for d in decisions if isinstance(d.payload, PlaybookRevised)]
    assert len(revised) == 1 and revised[0].revision == 1
    assert any("beat the best baseline" in lesson.text for lesson in revised[0].lessons)
    assert all(lesson.run_ids for lesson in revised[0].lessons)


def test_late_stage_replicates_the_best_configuration() -> None:
    """At 70% of the budget, the next proposals replicate top configurations with new seeds."""
    payloads = [
        p for i, v in enumerate([3.0, 2.0, 5.0, 6.0, 7.0, 8.0, 9.0]) for p in _completed(f"p00{i + 1}", v)
    ]
    decisions = decide(_view(*payloads, budget=BudgetLimits(max_experiments=10)), SPACE, workers=1, now=EPOCH)
    proposed = [d.payload for d in decisions if isinstance(d.payload, ProposalCreated)]
    assert proposed and proposed[0].config == {"model": "a", "x": 0.02}
    assert proposed[0].rationale.startswith("refine")


def test_time_budget_ends_a_campaign_whose_exploration_never_finished() -> None:
    """A campaign stuck before exploration still stops when its time is up."""
    start = CampaignStarted(
        domain="toy",
        objective="o",
        metric="m",
        direction="minimize",
        budget=BudgetLimits(max_wall_seconds=60),
    )
    lab = evolve(Lab(), event(start, "c1"))
    decisions = decide(lab.campaigns["c1"], SPACE, workers=1, now=EPOCH + timedelta(seconds=61))
    assert (
        isinstance(decisions[-1].payload, CampaignFinished) and "time budget" in decisions[-1].payload.reason
    )
