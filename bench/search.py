"""Search efficiency: experiments the builtin brain needs to beat the best baseline by a margin, vs random.

    .venv/bin/python bench/search.py [--domain traffic] [--seeds 5] [--experiments 12]
                                     [--margins 0.06,0.08,0.10,0.11]

Both searchers propose over the same adapter search space with the Strategist's own code
(`services.strategist.search.propose`): the builtin brain as the Strategist runs it (random start-up,
then TPE), and random search (the same call with start-up never ending). Every proposal is a real
experiment: the Worker's `execute` (harness prepare, sandboxed candidate fit, harness grade), two at
a time. A campaign's score, for each margin, is the number of experiments until one beats the best
baseline by that margin; a campaign that never does scores budget + 1 (medians stay honest, if
censored). Also printed: the best value each searcher found within the budget, mean over seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.strategist.search import Outcome, propose  # noqa: E402
from services.worker.execution import execute  # noqa: E402
from shared.domain import Domain, load_domain  # noqa: E402
from shared.events import RunFinished  # noqa: E402

RANDOM_FOREVER = 10**9


async def _noop() -> None:
    return None


async def evaluate(domain: Domain, config: dict, seed: int, workspace: Path) -> float | None:  # type: ignore[type-arg]
    result = await execute(
        domain, run_id="bench", proposal_id="bench", config=config, seed=seed, data=None,
        workspace=workspace, on_tick=_noop,
    )  # fmt: skip
    return result.value if isinstance(result, RunFinished) else None


async def campaign(
    domain: Domain, *, seed: int, budget: int, random: bool, scratch: Path
) -> list[float | None]:
    """One searcher's campaign, two experiments at a time like a two-worker lab."""
    space, direction = domain.manifest.search_space, domain.manifest.metric.direction
    startup = RANDOM_FOREVER if random else max(4, int(0.3 * budget))
    history: list[Outcome] = []
    values: list[float | None] = []
    while len(values) < budget:
        configs = propose(
            space,
            history,
            direction=direction,
            count=min(2, budget - len(values)),
            seed=seed * 1000 + len(values),
            startup=startup,
        )
        results = await asyncio.gather(
            *(
                evaluate(domain, c, seed, scratch / f"{seed}-{random}-{len(values) + i}")
                for i, c in enumerate(configs)
            )
        )
        for config, value in zip(configs, results, strict=True):
            history.append(Outcome(config, value, failed=value is None))
            values.append(value)
    return values


def best_baseline(domain: Domain) -> float:
    output = subprocess.run(
        domain.harness_argv("baselines"), capture_output=True, text=True, check=True
    ).stdout
    baselines = json.loads(output.strip().splitlines()[-1])["baselines"]
    pick = min if domain.manifest.metric.direction == "minimize" else max
    return pick(b["value"] for b in baselines)


def experiments_to(values: list[float | None], target: float, minimize: bool) -> int:
    for index, value in enumerate(values, start=1):
        if value is not None and (value <= target if minimize else value >= target):
            return index
    return len(values) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="traffic")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--experiments", type=int, default=12)
    parser.add_argument(
        "--margins", default="0.06,0.08,0.10,0.11", help="comma-separated, e.g. 0.08 = 8%% better"
    )
    args = parser.parse_args()
    domain = load_domain(args.domain)
    minimize = domain.manifest.metric.direction == "minimize"
    baseline = best_baseline(domain)
    print(f"best baseline {baseline:.4g}; {args.experiments} experiments per campaign, {args.seeds} seeds")
    runs: dict[str, list[list[float | None]]] = {"builtin": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for name, campaigns in runs.items():
                values = asyncio.run(
                    campaign(
                        domain, seed=seed, budget=args.experiments, random=name == "random", scratch=Path(tmp)
                    )
                )
                campaigns.append(values)
                shown = " ".join("fail" if v is None else f"{v:.3f}" for v in values)
                print(f"seed {seed} {name:8} {shown}", flush=True)
    pick = min if minimize else max
    for name, campaigns in runs.items():
        bests = [pick(v for v in values if v is not None) for values in campaigns]
        print(
            f"{name:8} best after {args.experiments}: mean {statistics.mean(bests):.4f},"
            f" sd {statistics.stdev(bests):.4f}"
        )
    print("margin  target   median experiments to target (budget+1 = never)   reached")
    for margin in (float(m) for m in args.margins.split(",")):
        target = baseline * (1 - margin) if minimize else baseline * (1 + margin)
        spent = {name: [experiments_to(v, target, minimize) for v in c] for name, c in runs.items()}
        builtin, rand = statistics.median(spent["builtin"]), statistics.median(spent["random"])
        reached = {name: sum(s <= args.experiments for s in values) for name, values in spent.items()}
        print(
            f"{margin:>5.0%}  {target:.4f}  builtin {builtin:>4g}  random {rand:>4g}"
            f"  random/builtin {rand / builtin:.2f}x"
            f"   builtin {reached['builtin']}/{args.seeds}, random {reached['random']}/{args.seeds}"
        )


if __name__ == "__main__":
    main()
