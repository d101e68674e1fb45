"""What the Supervisor flags: pure checks over a campaign's projections, the live heartbeats and the time.

Every finding is a `stall-detected` with the `intervention-issued` that answers it. Each has a key
(its event id) naming the thing it is about, so a condition is reported once, not on every poll, and
a restarted Supervisor does not report it again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from shared.agents.budget import code_run_seconds
from shared.events import InterventionIssued, StallDetected
from shared.heartbeat import Beat
from shared.live import Decision
from shared.projections import CampaignView

__all__ = ["Thresholds", "inspect"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    run_seconds: float  # the domain's per-run limit; workers enforce it, so runs far beyond it are hung
    silent_after_seconds: float = 10.0
    error_rate: float = 0.4
    error_window: int = 10
    error_min_runs: int = 5
    no_progress_runs: int | None = None  # a safety net behind the Strategist's own patience


def inspect(
    view: CampaignView,
    *,
    live_workers: Collection[str],
    now: datetime,
    limits: Thresholds,
    beats: Collection[Beat] = (),
) -> list[Decision]:
    if view.status != "running":
        return []
    findings = [
        *_running_runs(view, live_workers, now, limits),
        *_error_rate(view, limits),
        *_no_progress(view, limits),
        *_stuck_services(beats, now),
    ]
    reported = {event_id for event_id, _ in view.stalls} | {event_id for event_id, _ in view.interventions}
    return [f for f in findings if f"{view.campaign_id}-{f.key}" not in reported]


def _pair(key: str, stall: StallDetected, action: str, target: str) -> list[Decision]:
    order = InterventionIssued(action=action, target=target, reason=f"{stall.kind}: {stall.detail}")  # type: ignore[arg-type]
    return [Decision(f"stall-{key}", stall), Decision(f"intervention-{key}", order)]


def _running_runs(
    view: CampaignView, live: Collection[str], now: datetime, limits: Thresholds
) -> list[Decision]:
    findings: list[Decision] = []
    for card in view.kanban.cards.values():
        if card.state != "running" or not card.history:
            continue
        run_id, age = card.run_ids[-1], (now - card.history[-1].at).total_seconds()
        if card.worker not in live and age > limits.silent_after_seconds:
            stall = StallDetected(
                kind="silent_service",
                subject=f"worker {card.worker}",
                detail=f"no heartbeat while running {run_id}",
            )
            findings += _pair(f"silent-{run_id}", stall, "requeue", card.proposal_id)
        elif age > _bound(view, card.proposal_id, limits.run_seconds) + 60:
            stall = StallDetected(
                kind="run_overtime",
                subject=run_id,
                detail=f"running {age:.0f} s, limit {_bound(view, card.proposal_id, limits.run_seconds):g} s",
            )
            findings += _pair(f"overtime-{run_id}", stall, "cancel", card.proposal_id)
    return findings


def _bound(view: CampaignView, proposal_id: str, run_seconds: float) -> float:
    """How long a run may take: fit and grade, or, for a model's code change, its turns too."""
    proposal = view.leaderboard.changes.get(proposal_id)
    if proposal is not None and proposal.change and view.brain == "llm":
        return code_run_seconds(run_seconds)
    return 2 * run_seconds


def _stuck_services(beats: Collection[Beat], now: datetime) -> list[Decision]:
    """Instances that beat but whose main loop stopped turning: reported once per incarnation (the
    process tending them - the CLI's stack, a container's liveness probe - restarts them)."""
    findings = []
    for beat in beats:
        if beat.stuck(now.timestamp()):
            idle = now.timestamp() - beat.turned_at
            stall = StallDetected(
                kind="stuck_service",
                subject=f"{beat.service} {beat.instance}",
                detail=f"heartbeat fresh, main loop idle {idle:.0f} s (incarnation {beat.incarnation})",
            )
            findings.append(Decision(f"stall-stuck-{beat.instance}-{beat.incarnation}", stall))
    return findings


def _error_rate(view: CampaignView, limits: Thresholds) -> list[Decision]:
    ended = [
        t.state for c in view.kanban.cards.values() for t in c.history if t.state in {"finished", "failed"}
    ]
    recent = ended[-limits.error_window :]
    if len(recent) < limits.error_min_runs:
        return []
    rate = recent.count("failed") / len(recent)
    if rate <= limits.error_rate:
        return []
    stall = StallDetected(
        kind="error_rate", subject="runs", detail=f"{rate:.0%} of the last {len(recent)} runs failed"
    )
    return _pair("error-rate", stall, "stop", view.campaign_id)


def _no_progress(view: CampaignView, limits: Thresholds) -> list[Decision]:
    if limits.no_progress_runs is None:
        return []
    since = view.leaderboard.runs_since_best()
    if since < limits.no_progress_runs:
        return []
    stall = StallDetected(
        kind="no_progress", subject="leaderboard", detail=f"no new best in {since} graded runs"
    )
    return _pair("no-progress", stall, "stop", view.campaign_id)
