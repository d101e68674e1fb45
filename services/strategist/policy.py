"""The builtin Strategist's decisions: a pure function from a campaign's projections to new events.

Each decision carries a key that becomes its event id, so publishing it twice (a crash between publish
and the projection catching up) is deduplicated instead of proposing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.strategist.lessons import derive_lessons, outcomes
from services.strategist.search import SpaceParam, assignments, check_config, propose
from shared.agents.budget import DEBRIEF_CAPS
from shared.events import (
    BudgetExhausted,
    CampaignFinished,
    PhaseFinished,
    PhaseStarted,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    SubmissionRefused,
)
from shared.live import Decision
from shared.projections import CampaignView
from shared.projections.leaderboard import REPLICATES
from shared.projections.verdict import judge

__all__ = ["decide"]

JsonObject = dict[str, Any]
HAS_RESULT = frozenset({"finished", "failed"})
OPEN = frozenset({"proposed", "running", *HAS_RESULT})  # not yet analyzed, cancelled or dead-lettered
ANALYSIS_GRACE_S = 60.0  # how long a result waits for its worker's analysis before the Strategist's


def decide(view: CampaignView, space: Sequence[SpaceParam], *, workers: int, now: datetime) -> list[Decision]:
    """What the Strategist publishes next for a running campaign (nothing if it has nothing to do)."""
    if view.status != "running":
        return []
    if view.failure is not None:
        return _finish(view, space, f"exploration failed: {view.failure}")
    reason = _stop_reason(view, now)  # before waiting on exploration: a failed one must not hang the campaign
    if reason is not None:
        return [*_usd_exhausted(view), *_finish(view, space, reason)]
    if view.harness == "rejected":
        return _finish(view, space, "harness rejected: " + "; ".join(view.harness_reasons))
    if not view.explored or view.harness != "accepted":
        return []
    orders = [*_lost_analyses(view, now), *_interventions(view)]
    if orders:  # new proposals wait until the orders' requeues are in the view (open slots, budget, numbers)
        return orders
    if view.paused is not None:  # by an operator: nothing new until resumed
        return []
    if submitted := _submissions(view, space):  # the operators' own experiments first, under any brain
        return submitted
    if view.brain == "llm":  # the model proposes and writes the playbook (see llm.py); the lab confirms
        return _confirm_only(view, workers)
    return [*_playbook(view, space, final=False), *_proposals(view, space, workers)]


def _lost_analyses(view: CampaignView, now: datetime) -> list[Decision]:
    """Analyses of results that waited longer than ANALYSIS_GRACE_S for their worker's analysis
    (longer for a model's code change, whose worker debriefs it first).

    The worker that ran it may have died between its result and its analysis, and a card left with a
    result but no analysis is open forever (the experiment budget could never stop the campaign). Same
    judge, same id as the worker's (`<run>-analyzed`), so if the worker's arrives too, one is deduplicated.
    """
    decisions = []
    for pid, card in view.kanban.cards.items():
        change = view.leaderboard.changes.get(pid)
        debriefed = view.brain == "llm" and change is not None and bool(change.change)
        grace = ANALYSIS_GRACE_S + (DEBRIEF_CAPS.max_seconds + 60.0 if debriefed else 0.0)  # 60: retry waits
        if card.state in HAS_RESULT and (now - card.history[-1].at).total_seconds() >= grace:
            run_id = card.run_ids[-1]
            error = "run failed; analyzed by the strategist" if card.state == "failed" else None
            decisions.append(Decision(f"{run_id}-analyzed", judge(view.leaderboard, run_id, pid, error)))
    return decisions


def created(
    number: int,
    config: JsonObject,
    rationale: str,
    replaces: str | None = None,
    *,
    hypothesis: str = "",
    change: str = "",
    parent_digest: str | None = None,
    answers: str | None = None,
) -> Decision:
    """The one way a proposal is made: its id and its seed are both its number, unique in the campaign.

    So no two proposals share a seed, and replicates of a configuration (confirmations, requeues) are
    always told apart by their seeds.
    """
    pid = f"p{number:03d}"
    proposal = ProposalCreated(
        proposal_id=pid,
        config=config,
        seed=number,
        rationale=rationale,
        replaces=replaces,
        hypothesis=hypothesis,
        change=change,
        parent_digest=parent_digest,
        answers=answers,
    )
    return Decision(f"{pid}-created", proposal)


def _open(view: CampaignView) -> list[str]:
    return [pid for pid, card in view.kanban.cards.items() if card.state in OPEN]


def _stop_reason(view: CampaignView, now: datetime) -> str | None:
    limits, spent = view.budget.limits, view.proposals_spent
    if (asked := view.stop_requested) is not None:
        return f"stopped by {asked.by}" + (f": {asked.reason}" if asked.reason else "")
    if any(i.action == "stop" for _, i in view.interventions):
        stop = next(i for _, i in view.interventions if i.action == "stop")
        return f"stopped by the supervisor: {stop.reason}"
    started = view.budget.started_at
    if (
        limits.max_wall_seconds is not None
        and started
        and (now - started).total_seconds() >= limits.max_wall_seconds
    ):
        return f"time budget of {limits.max_wall_seconds:g} s spent"
    if view.budget.usd_spent:
        usd, calls = view.budget.usd, view.budget.llm_calls
        return f"USD budget of ${limits.max_usd:g} spent (${usd:.4f} on {calls} model calls)"
    if limits.max_experiments is not None and spent >= limits.max_experiments and not _open(view):
        return f"experiment budget of {limits.max_experiments} spent"
    if limits.patience is not None and view.leaderboard.runs_since_best() >= limits.patience:
        return f"no new best in the last {limits.patience} graded runs"
    return None


def _usd_exhausted(view: CampaignView) -> list[Decision]:
    if not view.budget.usd_spent:
        return []
    spent = BudgetExhausted(budget="usd", used=view.budget.usd, limit=view.budget.limits.max_usd or 0.0)
    return [Decision("budget-usd-exhausted", spent)]


def _finish(view: CampaignView, space: Sequence[SpaceParam], reason: str) -> list[Decision]:
    cancels = [
        Decision(f"{pid}-cancelled", ProposalCancelled(proposal_id=pid, reason=reason)) for pid in _open(view)
    ]
    best = view.leaderboard.declared()
    final = _playbook(view, space, final=True) if view.brain == "builtin" else []
    return [
        *cancels,
        *final,
        Decision("phase-experiment-finished", PhaseFinished(phase="experiment", outcome=reason)),
        Decision(
            "campaign-finished",
            CampaignFinished(reason=reason, best_run_id=best.best_run_id if best else None),
        ),
    ]


def _interventions(view: CampaignView) -> list[Decision]:
    """Act on the Supervisor's cancel and requeue orders that have not been carried out yet."""
    decisions: list[Decision] = []
    replaced = {card.replaces for card in view.kanban.cards.values() if card.replaces}
    number = len(view.kanban.cards) + 1
    for event_id, order in view.interventions:
        card = view.kanban.cards.get(order.target)
        if card is None or order.action not in {"cancel", "requeue"}:
            continue
        if card.state in OPEN:
            reason = f"{order.action} ordered by the supervisor: {order.reason}"
            decisions.append(
                Decision(
                    f"{card.proposal_id}-cancelled",
                    ProposalCancelled(proposal_id=card.proposal_id, reason=reason),
                )
            )
        if order.action == "requeue" and card.proposal_id not in replaced:
            config = view.leaderboard.config_of(card.proposal_id) or {}
            code = view.leaderboard.changes.get(card.proposal_id)
            decisions.append(
                created(
                    number,
                    config,
                    f"requeue ({event_id})",
                    replaces=card.proposal_id,
                    hypothesis=code.hypothesis if code else "",
                    change=code.change if code else "",
                    parent_digest=code.parent_digest if code else None,
                )
            )
            number += 1
    return decisions


def _submissions(view: CampaignView, space: Sequence[SpaceParam]) -> list[Decision]:
    """The operators' submissions not answered yet: each proposed as it stands, or refused saying why."""
    decisions: list[Decision] = []
    number, left = len(view.kanban.cards) + 1, view.proposals_left
    for event_id, submitted in view.submissions:
        if event_id in view.answered:
            continue
        why = check_config(space, dict(submitted.config))
        why = why or (None if left > 0 else "the experiment budget is spent")
        if why is not None:
            refused = SubmissionRefused(submission=event_id, reason=why)
            decisions.append(Decision(f"refused-{event_id}", refused))
            continue
        rationale = f"proposed by {submitted.by}"
        decisions.append(
            created(
                number, dict(submitted.config), rationale, hypothesis=submitted.hypothesis, answers=event_id
            )
        )
        number, left = number + 1, left - 1
    return [*experiment_started(view), *decisions] if decisions else []


def _hint(view: CampaignView, space: Sequence[SpaceParam]) -> tuple[str, str, JsonObject] | None:
    """The oldest hint not followed yet whose text fixes parameters: (its event id, rationale, values)."""
    for event_id, hint in view.hints:
        fixed = assignments(hint.text, space)
        if event_id not in view.answered and fixed:
            return event_id, f"following {hint.by}'s hint: {hint.text}", fixed
    return None


def _proposals(view: CampaignView, space: Sequence[SpaceParam], workers: int) -> list[Decision]:
    """Enough new proposals to keep every live worker busy, within the experiment budget."""
    limit = view.budget.limits.max_experiments
    count = min(max(workers, 1) + 1 - len(_open(view)), view.proposals_left)
    if count <= 0:
        return []
    first = len(view.kanban.cards) + 1
    confirmations = confirmation_proposals(view, first, count)
    planned: list[tuple[JsonObject, str, str | None]] = []
    if len(confirmations) < count:
        tried = [o for _, o in outcomes(view)]
        startup = max(4, int(0.3 * (limit or 20)))
        hint = _hint(view, space)
        configs = propose(
            space,
            tried,
            direction=view.leaderboard.direction,
            count=count - len(confirmations),
            seed=first,
            startup=startup,
            fixed=hint[2] if hint else None,
            study_key=view.campaign_id,
        )
        why = "explore: random start-up sample" if len(tried) < startup else "exploit: TPE"
        planned += [(config, why, None) for config in configs]
        if hint is not None:
            planned[0] = (planned[0][0], hint[1], hint[0])
        elif not view.kanban.cards:  # where an expert starts: the adapter's tuned defaults, then around
            planned[0] = ({}, "anchor: the adapter's own defaults (no parameter set)", None)
    decisions = experiment_started(view) + confirmations
    offset = first + len(confirmations)
    decisions += [
        created(offset + index, config, why, answers=answers)
        for index, (config, why, answers) in enumerate(planned)
    ]
    return decisions


def _confirm_only(view: CampaignView, workers: int) -> list[Decision]:
    """The LLM brain's share of the builtin policy: replicates of contenders, so a lucky seed of a
    model's idea is never declared the best."""
    count = min(max(workers, 1) + 1 - len(_open(view)), view.proposals_left)
    if count <= 0:
        return []
    confirmations = confirmation_proposals(view, len(view.kanban.cards) + 1, count)
    return experiment_started(view) + confirmations if confirmations else []


def experiment_started(view: CampaignView) -> list[Decision]:
    """The experiment phase's start, with the first proposals."""
    if view.kanban.cards:
        return []
    return [Decision("phase-experiment-started", PhaseStarted(phase="experiment"))]


def confirmation_proposals(view: CampaignView, first: int, count: int) -> list[Decision]:
    """Up to `count` proposals, numbered from `first`, that replicate contenders for the best with new
    seeds (a changed candidate's replicate runs its bundle unchanged)."""
    return [
        created(
            first + index,
            config,
            "confirm: replicate a contender for the best with a new seed",
            parent_digest=code,
        )
        for index, (config, code) in enumerate(_confirmations(view, count))
    ]


def _confirmations(view: CampaignView, count: int) -> list[tuple[JsonObject, str | None]]:
    """Replicates of the unsettled configurations that look better than the champion, up to REPLICATES
    runs each (a settled one, see `Leaderboard.settled`, is no contender, so it gets none).

    A best is declared only after replication (see the leaderboard), so these go before new
    exploration. Open proposals of a configuration count as runs it will get; a configuration with a
    failed run is not replicated further (it could not become the best by retrying until it passes).
    """
    board = view.leaderboard
    pending: dict[str, int] = {}
    failed: set[str] = set()
    for pid, card in view.kanban.cards.items():
        key = board.proposals.get(pid)
        if key is None:
            continue
        if card.state in OPEN:
            pending[key] = pending.get(key, 0) + 1
        if any(t.state == "failed" for t in card.history):
            failed.add(key)
    configs: list[tuple[JsonObject, str | None]] = []
    for row in board.contenders():
        if row.config is not None and row.key not in failed:
            configs += [(row.config, row.code_digest)] * max(0, REPLICATES - row.n - pending.get(row.key, 0))
    return configs[:count]


def _playbook(view: CampaignView, space: Sequence[SpaceParam], *, final: bool) -> list[Decision]:
    """A new playbook revision when `_revision_due` says (and a last one when the campaign ends)."""
    done = len(view.leaderboard.history) + sum(1 for c in view.kanban.cards.values() if c.state == "failed")
    revision = view.playbook.revision
    if not done or (not final and done < _revision_due(revision + 1)):
        return []
    lessons = derive_lessons(view, space)
    if lessons == view.playbook.lessons:
        return []
    why = "campaign end" if final else f"{done} results"
    return [
        Decision(
            f"playbook-{revision + 1}", PlaybookRevised(revision=revision + 1, lessons=lessons, reason=why)
        )
    ]


def _revision_due(revision: int) -> int:
    """The results after which playbook revision `revision` is due: every 3 results at first, then
    every tenth more, at most every 100. Deriving lessons costs tenths of a second on a long campaign
    (parameter importances over the study), and every revision stays in the playbook's history: a
    revision every 3 results was 3,333 of them in 10,000 results; this is 138."""
    due = 3
    for _ in range(1, revision):
        due += min(100, max(3, due // 10))
    return due
