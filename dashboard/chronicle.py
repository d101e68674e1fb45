"""A campaign over time, as a pure fold: its phases (started, finished, how) and its model spend after
each call; what the page's timeline and cost plot draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.events import CampaignStarted, Event, LlmCallFinished, PhaseFinished, PhaseStarted

__all__ = ["Chronicle", "Phase", "Spent", "Story", "evolve"]


@dataclass(slots=True)
class Phase:
    name: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class Spent:
    """The campaign's model spend, all calls so far, right after one call."""

    at: datetime
    usd: float
    tokens: int


@dataclass(slots=True)
class Story:
    started_at: datetime | None = None
    phases: list[Phase] = field(default_factory=list)
    spend: list[Spent] = field(default_factory=list)


@dataclass(slots=True)
class Chronicle:
    """Stories by campaign id."""

    campaigns: dict[str, Story] = field(default_factory=dict)


def evolve(chronicle: Chronicle, event: Event) -> Chronicle:
    story = chronicle.campaigns.setdefault(event.campaign_id, Story())
    match event.payload:
        case CampaignStarted():
            story.started_at = event.occurred_at
        case PhaseStarted(phase=name):
            story.phases.append(Phase(name, event.occurred_at))
        case PhaseFinished(phase=name, outcome=outcome):
            phase = next(
                (p for p in reversed(story.phases) if p.name == name and p.finished_at is None), None
            )
            if phase is None:  # a phase whose start the log does not hold: it began with the campaign
                phase = Phase(name, story.started_at or event.occurred_at)
                story.phases.append(phase)
            phase.finished_at, phase.outcome = event.occurred_at, outcome
        case LlmCallFinished(usd=usd, input_tokens=tokens_in, output_tokens=tokens_out):
            before = story.spend[-1] if story.spend else Spent(event.occurred_at, 0.0, 0)
            story.spend.append(
                Spent(event.occurred_at, before.usd + usd, before.tokens + tokens_in + tokens_out)
            )
    return chronicle
