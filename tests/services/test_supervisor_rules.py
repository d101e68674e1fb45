"""The Supervisor's checks, as pure functions of a campaign's events, the heartbeats and the time."""

from __future__ import annotations

from datetime import timedelta

from services.supervisor.rules import Thresholds, inspect
from shared.events import (
    CampaignStarted,
    InterventionIssued,
    Payload,
    ProposalCreated,
    RunFailed,
    RunFinished,
    RunStarted,
    StallDetected,
)
from shared.heartbeat import Beat
from shared.projections import CampaignView, Lab, evolve
from tests.factories import EPOCH, event

LIMITS = Thresholds(run_seconds=60, silent_after_seconds=10)


def _view(*payloads: Payload) -> CampaignView:
    start = CampaignStarted(domain="toy", objective="o", metric="mae", direction="minimize")
    lab = Lab()
    for second, payload in enumerate([start, *payloads]):
        lab = evolve(lab, event(payload, "c1", second))
    return lab.campaigns["c1"]


def _running(pid: str = "p001", worker: str = "worker-1") -> list[Payload]:
    return [
        ProposalCreated(proposal_id=pid, config={}),
        RunStarted(run_id=f"{pid}-1", proposal_id=pid, worker=worker),
    ]


def test_a_run_whose_worker_went_silent_is_requeued() -> None:
    """A running proposal whose worker has no heartbeat is flagged silent and requeued."""
    found = inspect(_view(*_running()), live_workers=set(), now=EPOCH + timedelta(seconds=30), limits=LIMITS)
    stall, order = (f.payload for f in found)
    assert isinstance(stall, StallDetected) and stall.kind == "silent_service" and "worker-1" in stall.subject
    assert isinstance(order, InterventionIssued) and (order.action, order.target) == ("requeue", "p001")


def test_a_live_worker_within_its_time_is_left_alone() -> None:
    """A heartbeating worker on a run younger than the limit raises nothing."""
    assert (
        inspect(
            _view(*_running()), live_workers={"worker-1"}, now=EPOCH + timedelta(seconds=30), limits=LIMITS
        )
        == []
    )


def test_a_run_far_past_its_limit_is_cancelled() -> None:
    """A run older than twice its limit plus a minute is overtime, even with a live worker."""
    found = inspect(
        _view(*_running()), live_workers={"worker-1"}, now=EPOCH + timedelta(seconds=500), limits=LIMITS
    )
    assert [f.payload.kind for f in found[:1]] == ["run_overtime"]  # type: ignore[attr-defined]
    assert found[1].payload.action == "cancel"  # type: ignore[attr-defined]


def test_error_rate_above_forty_percent_stops_the_campaign() -> None:
    """Three failures in five runs (60%) stop the campaign."""
    payloads: list[Payload] = []
    for i, ok in enumerate([True, False, True, False, False]):
        pid, run = f"p{i}", f"p{i}-1"
        payloads += [
            ProposalCreated(proposal_id=pid, config={}),
            RunStarted(run_id=run, proposal_id=pid, worker="w"),
        ]
        payloads.append(
            RunFinished(run_id=run, proposal_id=pid, value=1.0)
            if ok
            else RunFailed(run_id=run, proposal_id=pid, error="x")
        )
    found = inspect(_view(*payloads), live_workers={"w"}, now=EPOCH, limits=LIMITS)
    assert [f.payload.kind for f in found if isinstance(f.payload, StallDetected)] == ["error_rate"]
    assert [f.payload.action for f in found if isinstance(f.payload, InterventionIssued)] == ["stop"]


def test_a_finding_already_reported_is_not_reported_again() -> None:
    """Once its stall and intervention are in the log, a condition stays quiet on later polls."""
    view = _view(*_running())
    later = EPOCH + timedelta(seconds=30)
    first = inspect(view, live_workers=set(), now=later, limits=LIMITS)
    lab = Lab()
    start = CampaignStarted(domain="toy", objective="o", metric="mae", direction="minimize")
    for second, payload in enumerate([start, *_running()]):
        lab = evolve(lab, event(payload, "c1", second))
    for finding in first:
        lab = evolve(lab, event(finding.payload, "c1", 40, event_id=f"c1-{finding.key}"))
    assert inspect(lab.campaigns["c1"], live_workers=set(), now=later, limits=LIMITS) == []


def test_a_service_that_beats_but_does_not_turn_is_reported_once_per_incarnation() -> None:
    """A fresh heartbeat whose main loop is idle past STUCK_AFTER_S is a stuck service; a restarted
    process (a new incarnation) that turns is not."""
    now = EPOCH + timedelta(seconds=1000)
    stuck = Beat(
        "strategist", "strategist", at=now.timestamp(), incarnation="41-aa", turned_at=now.timestamp() - 200
    )
    fresh = Beat("worker", "worker-1", at=now.timestamp(), incarnation="42-bb", turned_at=now.timestamp() - 1)
    view = _view()
    found = inspect(view, live_workers=set(), now=now, limits=LIMITS, beats=[stuck, fresh])
    (finding,) = found
    assert isinstance(finding.payload, StallDetected) and finding.payload.kind == "stuck_service"
    assert finding.payload.subject == "strategist strategist" and "41-aa" in finding.payload.detail
    assert finding.key == "stall-stuck-strategist-41-aa"
    restarted = Beat(
        "strategist", "strategist", at=now.timestamp(), incarnation="43-cc", turned_at=now.timestamp()
    )
    assert inspect(view, live_workers=set(), now=now, limits=LIMITS, beats=[restarted]) == []
