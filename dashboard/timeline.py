"""The dashboard's copy of the event log: every event in log order, the lab folded up to the last one,
and the lab as it was at any earlier position (time travel folds the log again up to there).

Position n is the n-th event of the log (1-based), the same numbering `alphalab replay` folds by, so a
position the page shows can be looked up in the ledger.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dashboard import cards, chronicle
from shared.events import Event
from shared.projections import Lab, evolve
from shared.replay import gc_paused

__all__ = ["Moment", "Timeline"]


@dataclass(frozen=True, slots=True)
class Moment:
    """The lab as of one position: its projections, its cards' details and its campaigns' chronicles."""

    position: int
    lab: Lab
    details: cards.Details
    chronicle: chronicle.Chronicle


class Timeline:
    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.events: list[Event] = []
        self.lab = Lab()
        self.details = cards.Details()
        self.chronicle = chronicle.Chronicle()
        self._positions: dict[str, list[int]] = {}  # campaign id -> the positions of its events
        self._changed = asyncio.Event()
        self._travelled: Moment | None = None
        with gc_paused():
            for event in events:
                self.add(event)

    @property
    def position(self) -> int:
        return len(self.events)

    def add(self, event: Event) -> None:
        """Fold the next event of the log and wake whoever waits for a change."""
        self.events.append(event)
        self.lab = evolve(self.lab, event)
        self.details = cards.evolve(self.details, event)
        self.chronicle = chronicle.evolve(self.chronicle, event)
        self._positions.setdefault(event.campaign_id, []).append(len(self.events))
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed_after(self, position: int, timeout: float) -> bool:
        """Wait up to `timeout` s until the log is longer than `position`; whether it is."""
        if self.position > position:
            return True
        waiting = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting.wait(), timeout)
        return self.position > position

    def of_campaign(self, campaign_id: str, after: int = 0, limit: int | None = None) -> list[int]:
        """The positions of a campaign's events after `after`, oldest first (at most `limit`)."""
        positions = self._positions.get(campaign_id, [])
        start = bisect.bisect_right(positions, after)
        return positions[start : None if limit is None else start + limit]

    def position_at(self, moment: datetime) -> int:
        """The last position whose event occurred at or before `moment` (0 if none did)."""
        times = [event.occurred_at for event in self.events]  # log order is near time order, not exactly
        return max((i + 1 for i, at in enumerate(times) if at <= moment), default=0)

    def at(self, position: int) -> Moment:
        """The lab as it was right after the event at `position` (clamped to the log)."""
        position = max(0, min(position, self.position))
        if position == self.position:
            return Moment(position, self.lab, self.details, self.chronicle)
        if self._travelled is not None and self._travelled.position == position:
            return self._travelled
        lab, details, told = Lab(), cards.Details(), chronicle.Chronicle()
        with gc_paused():
            for event in self.events[:position]:
                lab = evolve(lab, event)
                details = cards.evolve(details, event)
                told = chronicle.evolve(told, event)
        self._travelled = Moment(position, lab, details, told)
        return self._travelled
