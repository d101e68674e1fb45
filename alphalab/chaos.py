"""`--chaos`: SIGKILL every service once mid-campaign, each at a moment that hurts, to show recovery.

The campaign must still finish with every proposal in one terminal state, no proposal run to
completion twice, and a replay equal to the live projections.
"""

from __future__ import annotations

from collections.abc import Callable

from alphalab.stack import Stack
from shared.projections import CampaignView

__all__ = ["Chaos"]

_Moment = Callable[[CampaignView], bool]


def _running_on(worker: str) -> _Moment:
    return lambda view: any(c.state == "running" and c.worker == worker for c in view.kanban.cards.values())


def _graded(n: int) -> _Moment:
    return lambda view: len(view.leaderboard.history) >= n


class Chaos:
    """Called on every progress tick; kills each service of its plan once, when its moment comes."""

    PLAN: tuple[tuple[str, _Moment], ...] = (
        ("explorer", lambda view: not view.explored),  # mid-exploration
        ("worker-1", _running_on("worker-1")),  # mid-run: its proposal must be redelivered
        ("strategist", _graded(1)),
        ("ledger", _graded(2)),
        ("supervisor", _graded(3)),
    )

    def __init__(self) -> None:
        self.killed: list[str] = []

    def __call__(self, stack: Stack, view: CampaignView) -> None:
        for name, moment in self.PLAN:
            if name not in self.killed and name in stack.names() and moment(view):
                stack.kill(name)
                self.killed.append(name)
