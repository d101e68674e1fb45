"""Seed noise: how often a best-of-one leaderboard declares a new best that replicates would not confirm.

    .venv/bin/python bench/noise.py [--campaigns 200] [--experiments 30] [--seed 0]
                                    [--noise 0.012,0.10] [--noisy-share 0.33] [--scale 0.25]

A synthetic objective (minimize, like the traffic domain's MAE): configuration i has a true value
mu_i = 3.77 + Exponential(scale) (most proposals are clearly worse than the best, a few are close to it),
and a run of it observes mu_i + sigma_i * N(0, 1). sigma_i is the seed noise of the traffic domain:
replicates in a real 30-experiment campaign had sample spreads of 0.011, 0.012 and 0.099 around means
of 3.77-3.81, so a configuration is "stable" (sigma = 0.012) or, with probability noisy-share, "noisy"
(sigma = 0.10, like the torch MLP). The configuration stream and every (configuration, replicate) noise
draw are fixed per campaign, so both rules see the same first observation of each configuration.

Two rules spend the same budget, one run at a time:

- best-of-one: every run tries a new configuration; a single value better than the best so far is a
  new best (the reference system's leaderboard).
- noise-aware: the real leaderboard projection (`shared.projections.leaderboard`) and the rule the
  Strategist follows: while `contenders()` is not empty, the next run replicates the first of them;
  otherwise it tries a new configuration. A new best is a promotion of the projection: REPLICATES runs
  whose mean beats the champion's by more than the larger of the two sample spreads.

A change of best is *false* when the new best's true value is not better than the one it replaced (the
very first best replaces nothing and is not counted). Printed side by side: false changes per change
and per campaign, campaigns with at least one, the true value of the final best and how much its shown
value flatters it, the configurations tried, the runs spent on replicates, and missed improvements
(configurations truly better, by more than 0.01, than the best declared when they were first tried, that
never became the declared best).
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the test helpers are imported)
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.events import CampaignStarted, ProposalCreated, RunFinished
from shared.projections.leaderboard import REPLICATES, Leaderboard, evolve
from tests.factories import event

MATERIAL = 0.01  # a missed improvement must be at least this much better (about one stable sigma)


@dataclass(frozen=True, slots=True)
class Objective:
    """One campaign's configurations: true values, noise levels, and noise draws per replicate."""

    mu: np.ndarray
    sigma: np.ndarray
    draws: np.ndarray  # draws[i, r]: the standard normal seed noise of replicate r of configuration i

    def observe(self, config: int, replicate: int) -> float:
        return float(self.mu[config] + self.sigma[config] * self.draws[config, replicate])


@dataclass(slots=True)
class Outcome:
    """What one rule did in one campaign."""

    changes: int = 0
    false_changes: int = 0
    final_true: float = 0.0
    final_shown: float = 0.0
    tried: int = 0
    replicate_runs: int = 0
    missed: int = 0
    declared: list[int] = field(default_factory=list)
    # each new configuration with the one declared best when it was first tried (None before any)
    first_tried: list[tuple[int, int | None]] = field(default_factory=list)


def objective(rng: np.random.Generator, experiments: int, args: argparse.Namespace) -> Objective:
    n = experiments
    noisy = rng.random(n) < args.noisy_share
    stable_sigma, noisy_sigma = args.noise
    return Objective(
        mu=3.77 + rng.exponential(args.scale, n),
        sigma=np.where(noisy, noisy_sigma, stable_sigma),
        draws=rng.standard_normal((n, experiments)),
    )


def best_of_one(obj: Objective, experiments: int) -> Outcome:
    out, best = Outcome(), None
    for config in range(experiments):
        out.first_tried.append((config, out.declared[-1] if out.declared else None))
        value = obj.observe(config, 0)
        if best is None or value < best:
            best = value
            out.declared.append(config)
    out.final_shown = best or 0.0
    out.tried = experiments
    return _score(out, obj)


def noise_aware(obj: Objective, experiments: int) -> Outcome:
    board = Leaderboard()
    evolve(board, event(CampaignStarted(domain="bench", objective="o", metric="mae", direction="minimize")))
    runs = [0] * experiments
    out, fresh = Outcome(), 0
    for step in range(experiments):
        contenders = board.contenders()
        if contenders:
            config = int(contenders[0].config["i"])  # type: ignore[index]
            out.replicate_runs += 1
        else:
            config, fresh = fresh, fresh + 1
            incumbent = board.declared()
            out.first_tried.append((config, int(incumbent.config["i"]) if incumbent else None))  # type: ignore[index]
        value = obj.observe(config, runs[config])
        runs[config] += 1
        pid = f"p{step:03d}"
        evolve(board, event(ProposalCreated(proposal_id=pid, config={"i": config}, seed=step)))
        evolve(board, event(RunFinished(run_id=f"{pid}-1", proposal_id=pid, value=value)))
    out.declared = [int(board.rows[p.key].config["i"]) for p in board.promotions]  # type: ignore[index]
    final = board.declared()
    out.final_shown = final.mean if final else 0.0
    if not board.promotions and final is not None:
        out.declared = [int(final.config["i"])]  # type: ignore[index]
    out.tried = fresh
    return _score(out, obj)


def _score(out: Outcome, obj: Objective) -> Outcome:
    mu = obj.mu
    out.changes = len(out.declared) - 1
    out.false_changes = sum(1 for a, b in zip(out.declared, out.declared[1:], strict=False) if mu[b] >= mu[a])
    out.final_true = float(mu[out.declared[-1]])
    declared = set(out.declared)
    out.missed = sum(
        1
        for c, incumbent in out.first_tried
        if incumbent is not None and c not in declared and mu[c] < mu[incumbent] - MATERIAL
    )
    return out


def _row(name: str, a: str, b: str) -> None:
    print(f"{name:58} {a:>14} {b:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", default="0.012,0.10", help="sigma of stable and of noisy configurations")
    parser.add_argument("--noisy-share", type=float, default=0.33)
    parser.add_argument("--scale", type=float, default=0.25, help="mean gap of a proposal to the optimum")
    args = parser.parse_args()
    args.noise = tuple(float(s) for s in args.noise.split(","))
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    results: dict[str, list[Outcome]] = {"best-of-one": [], "noise-aware": []}
    for _ in range(args.campaigns):
        obj = objective(rng, args.experiments, args)
        results["best-of-one"].append(best_of_one(obj, args.experiments))
        results["noise-aware"].append(noise_aware(obj, args.experiments))
    one, aware = results["best-of-one"], results["noise-aware"]

    def total(outs: list[Outcome], attr: str) -> int:
        return sum(getattr(o, attr) for o in outs)

    def mean(outs: list[Outcome], attr: str) -> float:
        return statistics.fmean(getattr(o, attr) for o in outs)

    print(
        f"{args.campaigns} campaigns x {args.experiments} experiments, one at a time; seed {args.seed}; "
        f"sigma {args.noise[0]:g} (stable) / {args.noise[1]:g} (noisy, share {args.noisy_share:g}); "
        f"true values 3.77 + Exp({args.scale:g}); REPLICATES = {REPLICATES}"
    )
    _row("", "best-of-one", "noise-aware")
    _row("changes of best, all campaigns", str(total(one, "changes")), str(total(aware, "changes")))
    false_one, false_aware = total(one, "false_changes"), total(aware, "false_changes")
    _row("false changes (new best not truly better than the old)", str(false_one), str(false_aware))
    _row(
        "false changes per change",
        f"{false_one / max(1, total(one, 'changes')):.3f}",
        f"{false_aware / max(1, total(aware, 'changes')):.3f}",
    )
    _row("false changes per campaign", f"{false_one / len(one):.3f}", f"{false_aware / len(aware):.3f}")
    _row(
        "campaigns with at least one false change",
        f"{sum(o.false_changes > 0 for o in one) / len(one):.3f}",
        f"{sum(o.false_changes > 0 for o in aware) / len(aware):.3f}",
    )
    _row(
        "true value of the final best (mean)",
        f"{mean(one, 'final_true'):.4f}",
        f"{mean(aware, 'final_true'):.4f}",
    )
    flatter_one = statistics.fmean(o.final_true - o.final_shown for o in one)
    flatter_aware = statistics.fmean(o.final_true - o.final_shown for o in aware)
    _row(
        "shown value flatters the final best by (true - shown)", f"{flatter_one:.4f}", f"{flatter_aware:.4f}"
    )
    _row("configurations tried per campaign", f"{mean(one, 'tried'):.1f}", f"{mean(aware, 'tried'):.1f}")
    _row(
        "runs spent on replicates per campaign",
        f"{mean(one, 'replicate_runs'):.1f}",
        f"{mean(aware, 'replicate_runs'):.1f}",
    )
    _row(
        f"missed true improvements (> {MATERIAL:g}) per campaign",
        f"{mean(one, 'missed'):.3f}",
        f"{mean(aware, 'missed'):.3f}",
    )
    ratio = (false_one / len(one)) / max(1e-9, false_aware / len(aware))
    print(f"false changes per campaign, best-of-one / noise-aware: {ratio:.1f}x")
    print(f"seconds: {time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
