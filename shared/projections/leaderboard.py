"""Leaderboard: one row per configuration (replicates aggregated) and one per baseline.

Ranking follows the campaign's metric direction, so a minimize metric sorts ascending (the reference
system sorted descending regardless). Mean and spread use Welford's update, so a row costs O(1) per run.

A lucky seed must not become the campaign's best, so the best is *declared*, not read off the top row:
the champion is a *settled* configuration: one with REPLICATES graded runs, or two runs that gave the
same value (its result does not depend on the seed), or one run in a campaign whose domain says it is
deterministic. The first configuration to settle becomes champion; after that, a settled challenger
takes over only when its mean beats the champion's by more than the larger of the two rows' sample
spreads. The check is
made whenever a run of a challenger arrives (O(1)), so promotions follow from the events in order and
a replay promotes exactly what the live fold did.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from shared.events import (
    BaselineEvaluated,
    CampaignStarted,
    Direction,
    Event,
    ProposalCreated,
    RunFinished,
)

__all__ = [
    "READS",
    "REPLICATES",
    "Graded",
    "Leaderboard",
    "Promotion",
    "Row",
    "code_key",
    "config_key",
    "evolve",
]

READS = (CampaignStarted, ProposalCreated, RunFinished, BaselineEvaluated)
REPLICATES = 3  # graded runs a configuration needs before it can be declared the best


def config_key(config: dict[str, Any]) -> str:
    """A short stable digest of a configuration; equal configurations are replicates."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def code_key(config: dict[str, Any], code_digest: str) -> str:
    """The row of a changed candidate: its code bundle and its configuration together."""
    return "code-" + config_key({"code": code_digest, "config": config})


@dataclass(slots=True)
class Row:
    key: str
    label: str
    baseline: bool
    config: dict[str, Any] | None = None
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    best: float | None = None
    best_run_id: str | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)  # every metric of the best result
    run_ids: list[str] = field(default_factory=list)
    code_digest: str | None = None  # a changed candidate's bundle (None: the adapter's own code)
    parent_digest: str | None = None

    @property
    def spread(self) -> float:
        """Sample standard deviation of the replicates (0 with fewer than two)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    def add(self, value: float, run_id: str | None, better: bool, metrics: dict[str, float]) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)
        if run_id is not None:
            self.run_ids.append(run_id)
        if self.best is None or better:
            self.best, self.best_run_id, self.best_metrics = value, run_id, dict(metrics)


@dataclass(frozen=True, slots=True)
class Graded:
    """One graded run, in the order results arrived."""

    run_id: str
    proposal_id: str
    value: float


@dataclass(frozen=True, slots=True)
class Promotion:
    """A configuration declared the best by the run that confirmed it, with its row as it then stood."""

    run_id: str
    key: str
    mean: float
    spread: float
    n: int


@dataclass(slots=True)
class Leaderboard:
    metric: str | None = None
    direction: Direction = "minimize"
    secondary: tuple[str, ...] = ()  # the manifest's secondary metrics, shown beside the metric
    deterministic: bool = False  # the domain says a configuration's result does not depend on the seed
    rows: dict[str, Row] = field(default_factory=dict)
    proposals: dict[str, str] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, ProposalCreated] = field(default_factory=dict)  # proposals that change code
    history: list[Graded] = field(default_factory=list)
    promotions: list[Promotion] = field(default_factory=list)
    since_promotion: int = 0  # graded runs since the last promotion (all of them before the first)

    def config_of(self, proposal_id: str) -> dict[str, Any] | None:
        key = self.proposals.get(proposal_id)
        return None if key is None else self.configs.get(key)

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b

    def ranked(self) -> list[Row]:
        """Rows best first by mean; ties go to the row with more replicates, then by key."""
        sign = 1.0 if self.direction == "minimize" else -1.0
        return sorted(self.rows.values(), key=lambda r: (sign * r.mean, -r.n, r.key))

    def best(self, *, baselines: bool = False) -> Row | None:
        return next((r for r in self.ranked() if r.baseline == baselines), None)

    def improvement(self, row: Row, over: Row) -> float | None:
        """How much better `row` is than `over`, in percent of `over` (negative if worse)."""
        if not over.mean:
            return None
        change = over.mean - row.mean if self.direction == "minimize" else row.mean - over.mean
        return 100 * change / abs(over.mean)

    def settled(self, row: Row) -> bool:
        """Whether `row` has the runs to be declared the best, so replicating it further would tell nothing.

        Two equal values (at n == 2 a spread of exactly 0) show the seed does not matter; from n == 3
        on, REPLICATES decides.
        """
        seedless = self.deterministic and row.code_digest is None  # a model's code may use the seed
        return row.n >= REPLICATES or (row.n >= 2 and row.m2 == 0.0) or (seedless and row.n >= 1)

    def champion(self) -> Row | None:
        """The configuration declared the best (replicated, and beyond the spread of the one before)."""
        return self.rows[self.promotions[-1].key] if self.promotions else None

    def declared(self) -> Row | None:
        """The champion, or the top configuration row (unconfirmed) while there is none."""
        return self.champion() or self.best()

    def contenders(self) -> list[Row]:
        """Configurations that need more runs before they could be declared the best, best mean first.

        Unsettled ones whose mean beats the champion's, or, with no champion yet, the top configuration
        row if it is unsettled.
        """
        champion = self.champion()
        if champion is None:
            top = self.best()
            return [top] if top is not None and not self.settled(top) else []
        return [
            row
            for row in self.ranked()
            if not row.baseline and not self.settled(row) and self.better(row.mean, champion.mean)
        ]

    def runs_since_best(self) -> int:
        """Graded runs since the last promotion (every graded run while there is no champion)."""
        return self.since_promotion

    def _promote(self, row: Row, run_id: str) -> None:
        """Make `row` the champion if it is settled and beats the champion beyond the noise."""
        champion = self.champion()
        if not self.settled(row) or row is champion:
            return
        if champion is not None:
            margin = max(row.spread, champion.spread)
            gain = champion.mean - row.mean if self.direction == "minimize" else row.mean - champion.mean
            if gain <= margin:
                return
        self.promotions.append(Promotion(run_id, row.key, row.mean, row.spread, row.n))
        self.since_promotion = 0


def evolve(board: Leaderboard, event: Event) -> Leaderboard:
    match event.payload:
        case CampaignStarted(metric=metric, direction=direction, deterministic=deterministic):
            board.metric, board.direction, board.deterministic = metric, direction, deterministic
            board.secondary = event.payload.secondary_metrics
        case ProposalCreated(proposal_id=proposal_id, config=config, change=change, parent_digest=parent):
            if change or parent:
                board.changes[proposal_id] = event.payload
            if change:  # its row is known once its code is, at its result; until then it has none
                key = f"proposal:{proposal_id}"
            else:
                key = code_key(config, parent) if parent else config_key(config)
            board.proposals[proposal_id] = key
            board.configs.setdefault(key, config)
        case RunFinished(proposal_id=proposal_id, run_id=run_id, value=value, code_digest=code):
            key = board.proposals.get(proposal_id, f"proposal:{proposal_id}")
            proposal = board.changes.get(proposal_id)
            if proposal is not None and code is not None:
                key = board.proposals[proposal_id] = code_key(proposal.config, code)
                board.configs.setdefault(key, proposal.config)
            row = board.rows.get(key)
            if row is None:
                config = board.configs.get(key)
                row = board.rows[key] = Row(key, _label(config) if config else key, False, config)
                if proposal is not None and code is not None:
                    row.code_digest, row.parent_digest = code, event.payload.parent_digest
                    row.label = f"code {code.removeprefix('sha256:')[:8]}: {row.label}"
            better = row.best is not None and board.better(value, row.best)
            row.add(value, run_id, better, event.payload.metrics)
            board.history.append(Graded(run_id, proposal_id, value))
            board.since_promotion += 1
            board._promote(row, run_id)
        case BaselineEvaluated(name=name, value=value, metrics=metrics):
            key = f"baseline:{name}"
            row = board.rows.setdefault(key, Row(key, name, True))
            row.add(value, None, row.best is not None and board.better(value, row.best), metrics)
    return board


def _label(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(config[k])}" for k in sorted(config))


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
