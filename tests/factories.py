"""Builders for realistic events, shared by tests and benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import (
    BaselineEvaluated,
    CampaignStarted,
    Event,
    Payload,
    Producer,
    ProposalCreated,
    RunFinished,
    RunStarted,
)

PRODUCER = Producer(service="test", instance="pytest")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def event(payload: Payload, campaign_id: str = "c1", second: float = 0.0, **kwargs: object) -> Event:
    return Event.new(
        payload,
        campaign_id=campaign_id,
        producer=PRODUCER,
        occurred_at=EPOCH + timedelta(seconds=second),
        **kwargs,  # type: ignore[arg-type]
    )


def small_campaign(campaign_id: str = "c1", runs: int = 3) -> list[Event]:
    """A campaign start, a baseline, and `runs` proposals each run to completion."""
    events = [
        event(
            CampaignStarted(domain="toy", objective="min x", metric="mae", direction="minimize"), campaign_id
        ),
        event(BaselineEvaluated(name="last-value", value=10.0), campaign_id, 1),
    ]
    for i in range(runs):
        events += [
            event(ProposalCreated(proposal_id=f"p{i}", config={"lr": i}), campaign_id, 2 + i),
            event(RunStarted(run_id=f"r{i}", proposal_id=f"p{i}", worker="w1"), campaign_id, 2.5 + i),
            event(
                RunFinished(run_id=f"r{i}", proposal_id=f"p{i}", value=5.0 + i, wall_seconds=1.0),
                campaign_id,
                3 + i,
            ),
        ]
    return events
