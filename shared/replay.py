"""Rebuild the projections from the ledger: the audit path, using the same fold as the live services."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from shared.events import Event
from shared.projections import Lab, evolve

__all__ = ["fold", "gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Folding a large log allocates millions of objects and few cycles; collection passes over the
    growing state then cost more than the fold itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def fold(events: Iterable[Event], lab: Lab | None = None) -> Lab:
    """All projections of `events`, folded in order."""
    state = lab or Lab()
    with gc_paused():
        for event in events:
            state = evolve(state, event)
    return state
