"""All projections of all campaigns, folded together: the one fold used live and in replay.

A fold is `evolve(state, event) -> state`: no I/O, no clock, no randomness, so the same events in the
same order give the same state wherever they come from. States are owned by the fold and updated in
place (returning a fresh copy of every map per event would make replaying a 1M-event log quadratic);
whoever needs a stable picture takes `snapshot()`, a plain JSON-ready document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.events import (
    AgentTurn,
    CampaignFinished,
    CampaignPaused,
    CampaignResumed,
    CampaignStarted,
    CampaignStopRequested,
    Event,
    ExplorationFinished,
    HarnessAccepted,
    HarnessRejected,
    HarnessReviewed,
    HarnessTested,
    HintGiven,
    InterventionIssued,
    LlmPlan,
    Payload,
    PhaseFinished,
    PlaybookRevised,
    ProposalCreated,
    ProposalSubmitted,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    StallDetected,
    SubmissionRefused,
)
from shared.projections import budget, kanban, leaderboard, playbook

__all__ = ["CampaignView", "Fenced", "Lab", "TurnRecord", "evolve", "snapshot"]


@dataclass(frozen=True, slots=True)
class Fenced:
    """A run's event that arrived when its run no longer held the proposal: kept for audit, not counted."""

    event_id: str
    type: str
    run_id: str
    proposal_id: str
    why: str  # 'unknown proposal', 'cancelled', 'dead-lettered', 'superseded by <run>', 'not running'...


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """An agent turn, with when it was recorded and how far the campaign had got by then."""

    event_id: str
    at: datetime
    results: int  # graded and failed runs counted so far
    proposals: int  # proposals made so far
    turn: AgentTurn


@dataclass(slots=True)
class CampaignView:
    campaign_id: str
    domain: str | None = None
    data: str | None = None
    adapter_digest: str | None = None  # the campaign's inputs in the blob store: see shared.inputs
    data_digest: str | None = None
    status: str = "unknown"
    explored: bool = False
    harness: Literal["pending", "accepted", "rejected"] = "pending"  # rejected is final
    harness_digest: str | None = None
    harness_review: HarnessReviewed | None = None
    harness_tested: HarnessTested | None = None
    harness_reasons: tuple[str, ...] = ()
    position: int = 0
    last_event_id: str | None = None
    leaderboard: leaderboard.Leaderboard = field(default_factory=leaderboard.Leaderboard)
    playbook: playbook.Playbook = field(default_factory=playbook.Playbook)
    kanban: kanban.Kanban = field(default_factory=kanban.Kanban)
    budget: budget.Budget = field(default_factory=budget.Budget)
    stalls: list[tuple[str, StallDetected]] = field(default_factory=list)
    interventions: list[tuple[str, InterventionIssued]] = field(default_factory=list)
    fenced: list[Fenced] = field(default_factory=list)
    failure: str | None = None  # why exploration failed for good, if it did
    brain: str = "builtin"
    llm: LlmPlan | None = None
    turns: list[TurnRecord] = field(default_factory=list)  # every role's agent turns
    run_errors: list[tuple[str, str]] = field(default_factory=list)  # (run id, why), counted failures
    decided_by: set[str] = field(default_factory=set)  # causation ids of proposals and playbooks
    paused: CampaignPaused | None = None  # by an operator, until resumed
    stop_requested: CampaignStopRequested | None = None  # by an operator: the Strategist ends it
    hints: list[tuple[str, HintGiven]] = field(default_factory=list)  # (event id, hint), oldest first
    submissions: list[tuple[str, ProposalSubmitted]] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)  # hints and submissions a proposal or refusal answers

    def holds(self, proposal_id: str, run_id: str) -> bool:
        """Whether `run_id` is the latest attempt of a proposal still open to its result or analysis."""
        card = self.kanban.cards.get(proposal_id)
        return card is not None and card.state not in kanban.TERMINAL and card.run_ids[-1:] == [run_id]

    @property
    def proposals_spent(self) -> int:
        """Experiments counted against the budget: every proposal except those cancelled before running."""
        return sum(1 for c in self.kanban.cards.values() if c.state != "cancelled" or c.run_ids)

    @property
    def proposals_left(self) -> int:
        """Proposals the experiment budget still has room for (a large number without a budget)."""
        limit = self.budget.limits.max_experiments
        return limit - self.proposals_spent if limit is not None else 1_000

    @property
    def turns_stopped(self) -> str | None:
        """Why no model turn of this campaign may start or go on (its dollars are spent, or it is
        over): nothing such a turn decided would be used or paid for."""
        if self.budget.usd_spent:
            return "the campaign's USD budget is spent"
        return None if self.status == "running" else "the campaign finished"

    @property
    def results(self) -> int:
        """Runs that counted with a result: graded or failed."""
        return len(self.leaderboard.history) + self.budget.failed

    @property
    def experimented(self) -> bool:
        """Whether any experiment has started (a campaign can end before its first one)."""
        return any(card.run_ids for card in self.kanban.cards.values())


@dataclass(slots=True)
class Lab:
    position: int = 0
    campaigns: dict[str, CampaignView] = field(default_factory=dict)


def evolve(lab: Lab, event: Event) -> Lab:
    """Fold one event into its campaign's views; unrecognized events only move the positions."""
    lab.position += 1
    view = lab.campaigns.get(event.campaign_id)
    if view is None:
        view = lab.campaigns[event.campaign_id] = CampaignView(event.campaign_id)
    view.position += 1
    view.last_event_id = event.event_id
    view.budget.last_event_at = event.occurred_at
    if isinstance(event.payload, _RESULTS):
        why = _fence(view, event.payload)
        if why is not None:
            view.fenced.append(
                Fenced(event.event_id, event.type, event.payload.run_id, event.payload.proposal_id, why)
            )
            return lab
    # Only the views that read this type of event see it: a replay of a million events spends
    # most of its fold time otherwise on pattern matches that cannot succeed.
    for fold in _FOLDS.get(type(event.payload), ()):
        fold(view, event)
    return lab


_RESULTS = (RunFinished, RunFailed, RunAnalyzed)
_CLOSED_WHY = {"cancelled": "cancelled", "dead": "dead-lettered"}  # closed before its run's result came


def _fence(view: CampaignView, result: RunFinished | RunFailed | RunAnalyzed) -> str | None:
    """Why a run's result or analysis must not count (None if it counts), decided once for every view.

    It counts only for the attempt that holds the proposal at that moment: the card's latest run, in
    the state that run can move from (running for a result, finished or failed for an analysis). A
    late result of a cancelled or superseded attempt is recorded for audit instead.
    """
    card = view.kanban.cards.get(result.proposal_id)
    if card is None:
        return "unknown proposal"
    if card.state in _CLOSED_WHY:
        return _CLOSED_WHY[card.state]
    if card.run_ids[-1:] != [result.run_id]:
        return f"superseded by {card.run_ids[-1]}" if card.run_ids else "never started"
    if isinstance(result, RunAnalyzed):
        return None if card.state in {"finished", "failed"} else "not finished"
    return None if card.state == "running" else "not running"


def _fold_campaign(view: CampaignView, event: Event) -> None:
    match event.payload:
        case CampaignStarted(domain=domain, data=data, brain=brain, llm=llm) as started:
            view.domain, view.data, view.status = domain, data, "running"
            view.adapter_digest, view.data_digest = started.adapter_digest, started.data_digest
            view.brain, view.llm = brain, llm
        case ProposalCreated() | PlaybookRevised():
            if event.causation_id:
                view.decided_by.add(event.causation_id)
            if isinstance(event.payload, ProposalCreated) and event.payload.answers:
                view.answered.add(event.payload.answers)
        case HintGiven() as hint:
            view.hints.append((event.event_id, hint))
        case ProposalSubmitted() as submission:
            view.submissions.append((event.event_id, submission))
        case SubmissionRefused(submission=submission):
            view.answered.add(submission)
        case RunFailed(run_id=run_id, error=error):
            view.run_errors.append((run_id, error))
        case AgentTurn() as turn:
            record = TurnRecord(event.event_id, event.occurred_at, view.results, len(view.kanban.cards), turn)
            view.turns.append(record)
        case CampaignFinished():
            view.status = "finished"
        case ExplorationFinished():
            view.explored = True
        case PhaseFinished(phase="explore", outcome=outcome) if outcome.startswith(_FAILED):
            view.failure = outcome.removeprefix(_FAILED)
        case HarnessReviewed(harness_digest=digest) as review:
            view.harness_digest, view.harness_review = digest, review
        case HarnessTested(harness_digest=digest) as tested:
            view.harness_digest, view.harness_tested = digest, tested
        case HarnessAccepted(harness_digest=digest) if view.harness != "rejected":
            view.harness_digest, view.harness = digest, "accepted"
        case HarnessRejected(harness_digest=digest, reasons=reasons):
            view.harness_digest, view.harness, view.harness_reasons = digest, "rejected", reasons
        case StallDetected() as stall:
            view.stalls.append((event.event_id, stall))
        case InterventionIssued() as intervention:
            view.interventions.append((event.event_id, intervention))
        case CampaignPaused() as paused if view.status == "running":
            view.paused = paused
        case CampaignResumed():
            view.paused = None
        case CampaignStopRequested() as stop if view.stop_requested is None:
            view.stop_requested = stop


_FAILED = "failed: "  # how the explorer's PhaseFinished says exploration failed for good
_Fold = Callable[[CampaignView, Event], object]
_VIEW_FOLDS: tuple[tuple[tuple[type[Payload], ...], _Fold], ...] = (
    (
        (
            CampaignStarted,
            CampaignFinished,
            ExplorationFinished,
            PhaseFinished,
            HarnessReviewed,
            HarnessTested,
            HarnessAccepted,
            HarnessRejected,
            StallDetected,
            InterventionIssued,
            AgentTurn,
            RunFailed,
            ProposalCreated,
            PlaybookRevised,
            CampaignPaused,
            CampaignResumed,
            CampaignStopRequested,
            HintGiven,
            ProposalSubmitted,
            SubmissionRefused,
        ),
        _fold_campaign,
    ),
    (leaderboard.READS, lambda view, event: leaderboard.evolve(view.leaderboard, event)),
    (playbook.READS, lambda view, event: playbook.evolve(view.playbook, event)),
    (kanban.READS, lambda view, event: kanban.evolve(view.kanban, event)),
    (budget.READS, lambda view, event: budget.evolve(view.budget, event)),
)
_FOLDS: dict[type[Payload], list[_Fold]] = {}
for _types, _fold in _VIEW_FOLDS:
    for _type in _types:
        _FOLDS.setdefault(_type, []).append(_fold)


def snapshot(view: CampaignView) -> dict[str, Any]:
    """A campaign's projections as one JSON-ready document (what `alphalab replay --json` prints)."""
    board, book, cards, spent = view.leaderboard, view.playbook, view.kanban, view.budget
    champion = board.champion()
    review, tested = view.harness_review, view.harness_tested
    return {
        "campaign_id": view.campaign_id,
        "domain": view.domain,
        "data": view.data,
        "adapter_digest": view.adapter_digest,
        "data_digest": view.data_digest,
        "status": view.status,
        "paused": view.paused.model_dump(mode="json") if view.paused else None,
        "stop_requested": view.stop_requested.model_dump(mode="json") if view.stop_requested else None,
        "hints": [{"event_id": eid, **hint.model_dump(mode="json")} for eid, hint in view.hints],
        "submissions": [
            {"event_id": eid, "answered": eid in view.answered, **s.model_dump(mode="json")}
            for eid, s in view.submissions
        ],
        "explored": view.explored,
        "failure": view.failure,
        "experimented": view.experimented,
        "position": view.position,
        "last_event_id": view.last_event_id,
        "harness": {
            "status": view.harness,
            "digest": view.harness_digest,
            "review": review.model_dump(mode="json", exclude={"harness_digest"}) if review else None,
            "tested": tested.model_dump(mode="json", exclude={"harness_digest"}) if tested else None,
            "reasons": list(view.harness_reasons),
        },
        "leaderboard": {
            "metric": board.metric,
            "direction": board.direction,
            "secondary_metrics": list(board.secondary),
            "rows": [
                {
                    "rank": rank,
                    "key": row.key,
                    "label": row.label,
                    "baseline": row.baseline,
                    "config": row.config,
                    "n": row.n,
                    "mean": row.mean,
                    "spread": row.spread,
                    "settled": board.settled(row),
                    "best": row.best,
                    "best_run_id": row.best_run_id,
                    "best_metrics": {name: row.best_metrics.get(name) for name in board.secondary},
                    "run_ids": list(row.run_ids),
                    "code_digest": row.code_digest,
                    "parent_digest": row.parent_digest,
                }
                for rank, row in enumerate(board.ranked(), start=1)
            ],
            "replicates": leaderboard.REPLICATES,
            "deterministic": board.deterministic,
            "champion": None
            if champion is None
            else {
                "key": champion.key,
                "label": champion.label,
                "mean": champion.mean,
                "spread": champion.spread,
                "n": champion.n,
                "best_run_id": champion.best_run_id,
            },
            "promotions": [
                {"run_id": p.run_id, "key": p.key, "mean": p.mean, "spread": p.spread, "n": p.n}
                for p in board.promotions
            ],
            "runs_since_best": board.runs_since_best(),
        },
        "playbook": {
            "revision": book.revision,
            "lessons": [lesson.model_dump(mode="json") for lesson in book.lessons],
            "history": [
                {
                    "revision": rev.revision,
                    "event_id": rev.event_id,
                    "at": rev.at.isoformat(),
                    "reason": rev.reason,
                    "lessons": len(rev.lessons),
                }
                for rev in book.history
            ],
        },
        "kanban": {
            "columns": cards.columns(),
            "cards": {
                pid: {
                    "state": card.state,
                    "replaces": card.replaces,
                    "worker": card.worker,
                    "run_ids": list(card.run_ids),
                    "history": [[t.state, t.event_id, t.at.isoformat()] for t in card.history],
                }
                for pid, card in cards.cards.items()
            },
        },
        "supervision": {
            "stalls": [{"event_id": eid, **stall.model_dump(mode="json")} for eid, stall in view.stalls],
            "interventions": [
                {"event_id": eid, **i.model_dump(mode="json")} for eid, i in view.interventions
            ],
        },
        "fenced": [asdict(fenced) for fenced in view.fenced],
        "brain": view.brain,
        "llm": view.llm.model_dump(mode="json") if view.llm else None,
        "turns": [
            {"event_id": t.event_id, **t.turn.model_dump(mode="json", exclude={"transcript_digest"})}
            for t in view.turns
        ],
        "budget": {
            "limits": spent.limits.model_dump(mode="json"),
            "experiments": spent.experiments,
            "experiments_left": spent.experiments_left,
            "failed": spent.failed,
            "compute_seconds": spent.compute_seconds,
            "elapsed_seconds": spent.elapsed_seconds,
            "usd": spent.usd,
            "llm_calls": spent.llm_calls,
            "input_tokens": spent.input_tokens,
            "output_tokens": spent.output_tokens,
            "exhausted": list(spent.exhausted),
        },
    }
