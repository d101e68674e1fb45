"""Spend: what the LLM brain's calls cost, by role and model (what `alphalab cost` shows).

A pure fold over `llm-call-finished` events: the same numbers live and in replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.events import Event, LlmCallFinished

__all__ = ["Line", "Spend", "spend"]


@dataclass(slots=True)
class Line:
    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    seconds: float = 0.0
    retries: int = 0

    def add(self, call: LlmCallFinished) -> None:
        self.calls += 1
        self.input_tokens += call.input_tokens
        self.cached_tokens += call.cached_tokens
        self.output_tokens += call.output_tokens
        self.usd += call.usd
        self.seconds += call.seconds
        self.retries += call.retries


@dataclass(slots=True)
class Spend:
    lines: dict[tuple[str, str], Line] = field(default_factory=dict)  # (role, provider:model) → totals
    total: Line = field(default_factory=Line)


def spend(events: Iterable[Event]) -> Spend:
    result = Spend()
    for event in events:
        call = event.payload
        if isinstance(call, LlmCallFinished):
            key = (call.role, f"{call.provider}:{call.model}")
            result.lines.setdefault(key, Line()).add(call)
            result.total.add(call)
    return result
