"""Budget: what a campaign has spent (experiments, compute and elapsed time, LLM dollars and tokens)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.events import (
    BudgetExhausted,
    BudgetLimits,
    CampaignStarted,
    Event,
    LlmCallFinished,
    RunFailed,
    RunFinished,
)

__all__ = ["READS", "Budget", "evolve"]

READS = (CampaignStarted, RunFinished, RunFailed, LlmCallFinished, BudgetExhausted)


@dataclass(slots=True)
class Budget:
    limits: BudgetLimits = field(default_factory=BudgetLimits)
    experiments: int = 0
    failed: int = 0
    compute_seconds: float = 0.0
    started_at: datetime | None = None
    last_event_at: datetime | None = None
    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    exhausted: list[str] = field(default_factory=list)

    @property
    def elapsed_seconds(self) -> float:
        """Campaign time from its start to its latest event, taken from the events' own timestamps."""
        if self.started_at is None or self.last_event_at is None:
            return 0.0
        return max(0.0, (self.last_event_at - self.started_at).total_seconds())

    @property
    def usd_spent(self) -> bool:
        """Whether the LLM spend reached `max_usd`: no new LLM work may start."""
        return self.limits.max_usd is not None and self.usd >= self.limits.max_usd

    @property
    def experiments_left(self) -> int | None:
        limit = self.limits.max_experiments
        return None if limit is None else max(0, limit - self.experiments)


def evolve(budget: Budget, event: Event) -> Budget:
    """Fold a spending event. (`last_event_at` moves on every event; the campaign fold sets it.)"""
    match event.payload:
        case CampaignStarted(budget=limits):
            budget.limits, budget.started_at = limits, event.occurred_at
        case RunFinished(wall_seconds=seconds):
            budget.experiments += 1
            budget.compute_seconds += seconds
        case RunFailed(wall_seconds=seconds):
            budget.experiments += 1
            budget.failed += 1
            budget.compute_seconds += seconds
        case LlmCallFinished(usd=usd, input_tokens=tokens_in, output_tokens=tokens_out):
            budget.llm_calls += 1
            budget.usd += usd
            budget.input_tokens += tokens_in
            budget.output_tokens += tokens_out
        case BudgetExhausted(budget=kind):
            if kind not in budget.exhausted:
                budget.exhausted.append(kind)
    return budget
