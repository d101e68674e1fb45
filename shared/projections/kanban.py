"""Kanban: where each proposal stands, and how it got there."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from shared.events import (
    Event,
    EventRejected,
    ProposalCancelled,
    ProposalCreated,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    RunStarted,
)

__all__ = ["READS", "TERMINAL", "Card", "Kanban", "State", "Transition", "evolve"]

READS = (ProposalCreated, RunStarted, RunFinished, RunFailed, RunAnalyzed, ProposalCancelled, EventRejected)

State = Literal["proposed", "running", "finished", "failed", "analyzed", "cancelled", "dead"]
# dead: the bus gave up delivering its proposal-created message (dead-lettered); no worker will run it
TERMINAL: frozenset[State] = frozenset({"analyzed", "cancelled", "dead"})


@dataclass(frozen=True, slots=True)
class Transition:
    state: State
    event_id: str
    at: datetime


@dataclass(slots=True)
class Card:
    proposal_id: str
    state: State
    history: list[Transition] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    replaces: str | None = None
    worker: str | None = None  # the instance running (or that last ran) its latest run


@dataclass(slots=True)
class Kanban:
    cards: dict[str, Card] = field(default_factory=dict)
    created_by: dict[str, str] = field(default_factory=dict)  # proposal-created event id -> proposal id

    def columns(self) -> dict[State, list[str]]:
        """Proposal ids per state, in the order the proposals were created."""
        columns: dict[State, list[str]] = {}
        for card in self.cards.values():
            columns.setdefault(card.state, []).append(card.proposal_id)
        return columns


def evolve(board: Kanban, event: Event) -> Kanban:
    match event.payload:
        case ProposalCreated(proposal_id=proposal_id, replaces=replaces):
            if proposal_id not in board.cards:
                board.cards[proposal_id] = Card(proposal_id, "proposed", replaces=replaces)
                board.created_by[event.event_id] = proposal_id
                _move(board, proposal_id, "proposed", event)
        case RunStarted(proposal_id=proposal_id, run_id=run_id, worker=worker):
            if _move(board, proposal_id, "running", event):
                board.cards[proposal_id].run_ids.append(run_id)
                board.cards[proposal_id].worker = worker
        case RunFinished(proposal_id=proposal_id):
            _move(board, proposal_id, "finished", event)
        case RunFailed(proposal_id=proposal_id):
            _move(board, proposal_id, "failed", event)
        case RunAnalyzed(proposal_id=proposal_id):
            _move(board, proposal_id, "analyzed", event)
        case ProposalCancelled(proposal_id=proposal_id):
            _move(board, proposal_id, "cancelled", event)
        case EventRejected(event_id=rejected) if rejected in board.created_by:
            _move(board, board.created_by[rejected], "dead", event)
    return board


def _move(board: Kanban, proposal_id: str, state: State, event: Event) -> bool:
    """Record the transition unless the card is unknown or already terminal."""
    card = board.cards.get(proposal_id)
    if card is None or card.state in TERMINAL:
        return False
    card.state = state
    card.history.append(Transition(state, event.event_id, event.occurred_at))
    return True
