"""What a kanban card shows beyond its state: the proposal itself and each run of it, as a pure fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.events import Event, ProposalCreated, RunAnalyzed, RunFailed, RunFinished, RunStarted

__all__ = ["READS", "Attempt", "Detail", "Details", "evolve"]

READS = (ProposalCreated, RunStarted, RunFinished, RunFailed, RunAnalyzed)


@dataclass(slots=True)
class Attempt:
    """One run of a proposal: who ran it, when, and what came of it."""

    run_id: str
    worker: str
    started_at: datetime
    ended_at: datetime | None = None
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    log_tail: str = ""  # the end of the run's log
    wall_seconds: float = 0.0
    verdict: str | None = None
    summary: str = ""
    debrief: str = ""  # an LLM worker's reading of the run
    code_digest: str | None = None
    parent_digest: str | None = None


@dataclass(slots=True)
class Detail:
    proposal: ProposalCreated
    created_at: datetime
    attempts: list[Attempt] = field(default_factory=list)

    def attempt(self, run_id: str) -> Attempt | None:
        return next((a for a in reversed(self.attempts) if a.run_id == run_id), None)


@dataclass(slots=True)
class Details:
    """Card details by campaign, then proposal id."""

    campaigns: dict[str, dict[str, Detail]] = field(default_factory=dict)


def evolve(details: Details, event: Event) -> Details:
    cards = details.campaigns.setdefault(event.campaign_id, {})
    match event.payload:
        case ProposalCreated(proposal_id=proposal_id) as proposal if proposal_id not in cards:
            cards[proposal_id] = Detail(proposal, event.occurred_at)
        case RunStarted(proposal_id=proposal_id, run_id=run_id, worker=worker) if proposal_id in cards:
            cards[proposal_id].attempts.append(Attempt(run_id, worker, event.occurred_at))
        case RunFinished(proposal_id=proposal_id, run_id=run_id) as done if attempt := _attempt(
            cards, proposal_id, run_id
        ):
            attempt.value, attempt.metrics, attempt.log_tail = done.value, dict(done.metrics), done.log_tail
            _ended(attempt, event, done)
        case RunFailed(proposal_id=proposal_id, run_id=run_id) as failed if attempt := _attempt(
            cards, proposal_id, run_id
        ):
            attempt.error, attempt.log_tail = failed.error, failed.log_tail
            _ended(attempt, event, failed)
        case RunAnalyzed(proposal_id=proposal_id, run_id=run_id) as analyzed if attempt := _attempt(
            cards, proposal_id, run_id
        ):
            attempt.verdict, attempt.summary, attempt.debrief = (
                analyzed.verdict,
                analyzed.summary,
                analyzed.debrief,
            )
    return details


def _ended(attempt: Attempt, event: Event, result: RunFinished | RunFailed) -> None:
    attempt.ended_at, attempt.wall_seconds = event.occurred_at, result.wall_seconds
    attempt.code_digest, attempt.parent_digest = result.code_digest, result.parent_digest


def _attempt(cards: dict[str, Detail], proposal_id: str, run_id: str) -> Attempt | None:
    detail = cards.get(proposal_id)
    return detail.attempt(run_id) if detail is not None else None
