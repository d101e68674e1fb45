"""Strategist benchmark: how long the builtin brain takes to decide, against the campaign's length.

    .venv/bin/python bench/decisions.py [--sizes 1000,3000,10000,30000] [--workers 8] [--repeats 3]

For each size n, a builtin-brain campaign of n analysed experiments over a 4-parameter search space
(a categorical, a conditional float, a log float, an int) is folded into its view (not timed); then
`policy.decide` is timed as the Strategist calls it with `--workers` idle workers (new proposals, and
a playbook revision where one is due), median of `--repeats`: with the study windowed to
`search.WINDOW` trials (as the Strategist runs) and, beside it, over the whole history (as before).
Measured side by side in one run: "vs the smallest" is each median over the smallest size's, which
stays near 1 when a decision costs the same at any length (issue 13).
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the project is imported)
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from services.strategist import search
from services.strategist.policy import decide
from shared.domain import Param
from shared.events import (
    BaselineEvaluated,
    BudgetLimits,
    CampaignStarted,
    Event,
    ExplorationFinished,
    HarnessAccepted,
    Producer,
    ProposalCreated,
    RunAnalyzed,
    RunFinished,
    RunStarted,
)
from shared.projections import CampaignView
from shared.replay import fold

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCER = Producer(service="bench", instance="decisions")


SPACE = [  # as a manifest's [[search_space]] declares it
    Param(name="model", kind="categorical", choices=("ridge", "gbm", "mlp")),
    Param(name="alpha", kind="float", low=1e-4, high=10.0, log=True, when={"model": ("ridge",)}),
    Param(name="lr", kind="float", low=1e-3, high=1.0, log=True),
    Param(name="depth", kind="int", low=1, high=12),
]


def campaign(n: int, seed: int = 7) -> CampaignView:
    """A running builtin campaign with `n` experiments graded and analysed."""
    rng = random.Random(seed)
    clock = iter(range(10**9))

    def at(payload: Any) -> Event:
        when = EPOCH + timedelta(seconds=next(clock))
        return Event.new(payload, campaign_id="c1", producer=PRODUCER, occurred_at=when)

    budget = BudgetLimits(max_experiments=10 * n, max_wall_seconds=10.0**9)
    started = CampaignStarted(domain="toy", objective="o", metric="mae", direction="minimize", budget=budget)
    events = [
        at(started),
        at(BaselineEvaluated(name="naive", value=10.0)),
        at(ExplorationFinished()),
        at(HarnessAccepted(harness_digest="sha256:" + "0" * 64)),
    ]
    for i in range(n):
        model = rng.choice(["ridge", "gbm", "mlp"])
        config: dict[str, Any] = {"model": model, "lr": 10 ** rng.uniform(-3, 0), "depth": rng.randint(1, 12)}
        if model == "ridge":
            config["alpha"] = 10 ** rng.uniform(-4, 1)
        pid, run = f"p{i + 1:06d}", f"p{i + 1:06d}-1"
        value = 5 + abs(config["lr"] - 0.1) * 3 + config["depth"] * 0.05 + rng.gauss(0, 0.1)
        events += [
            at(ProposalCreated(proposal_id=pid, config=config, seed=i)),
            at(RunStarted(run_id=run, proposal_id=pid, worker=f"w{i % 8}")),
            at(RunFinished(run_id=run, proposal_id=pid, value=value, wall_seconds=1.0)),
            at(RunAnalyzed(run_id=run, proposal_id=pid, verdict="worse")),
        ]
    return fold(events).campaigns["c1"]


def timed_decision(view: CampaignView, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    decisions = decide(view, SPACE, workers=workers, now=EPOCH + timedelta(days=30))
    return time.perf_counter() - start, len(decisions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000,30000", help="campaign lengths, comma-separated")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    grid = Table(title=f"builtin brain: one decision with {args.workers} idle workers")
    for column in ("experiments", "study", "median s", "decisions", "vs the smallest"):
        grid.add_column(column, justify="right")
    windowed, first = search.WINDOW, {}
    for n in sizes:
        view = campaign(n)
        for study, size in ((f"windowed ({windowed:,})", windowed), ("whole history", 10**9)):
            search.WINDOW = size
            timed_decision(view, args.workers)  # warm: imports, first study
            runs = [timed_decision(view, args.workers) for _ in range(args.repeats)]
            median = statistics.median(seconds for seconds, _ in runs)
            first.setdefault(study, median)
            grid.add_row(f"{n:,}", study, f"{median:.3f}", str(runs[0][1]), f"{median / first[study]:.2f}")
        search.WINDOW = windowed
    Console().print(grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
