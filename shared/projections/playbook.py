"""Playbook: the current lessons, each citing the runs behind it, and every earlier revision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.events import Event, Lesson, PlaybookRevised

__all__ = ["READS", "Playbook", "Revision", "evolve"]

READS = (PlaybookRevised,)


@dataclass(frozen=True, slots=True)
class Revision:
    revision: int
    event_id: str
    at: datetime
    reason: str
    lessons: tuple[Lesson, ...]


@dataclass(slots=True)
class Playbook:
    history: list[Revision] = field(default_factory=list)

    @property
    def revision(self) -> int:
        return self.history[-1].revision if self.history else 0

    @property
    def lessons(self) -> tuple[Lesson, ...]:
        return self.history[-1].lessons if self.history else ()


def evolve(playbook: Playbook, event: Event) -> Playbook:
    match event.payload:
        case PlaybookRevised(revision=revision, lessons=lessons, reason=reason):
            # A revision that does not move forward was written against a stale playbook: keep the log
            # honest by passing over it rather than letting it overwrite newer lessons.
            if revision > playbook.revision:
                playbook.history.append(
                    Revision(revision, event.event_id, event.occurred_at, reason, lessons)
                )
    return playbook
