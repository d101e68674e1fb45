"""Search efficiency: experiments the builtin brain needs to beat the best baseline by a margin, vs random.

    .venv/bin/python bench/search.py [--domain traffic] [--seeds 5] [--experiments 12] [--margin 0.08]

Both searchers propose over the same adapter search space with the Strategist's own code
(`services.strategist.search.propose`): the builtin brain as the Strategist runs it (random start-up,
then TPE), and random search (the same call with start-up never ending). Every proposal is a real
experiment: the Worker's `execute` (harness prepare, sandboxed candidate fit, harness grade), two at
a time. A campaign's score is the number of experiments until one beats the best baseline by
`--margin`; a campaign that never does scores budget + 1 (so medians stay honest, if censored).
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
    parser.add_argument("--margin", type=float, default=0.08)
    args = parser.parse_args()
    domain = load_domain(args.domain)
    minimize = domain.manifest.metric.direction == "minimize"
    baseline = best_baseline(domain)
    target = baseline * (1 - args.margin) if minimize else baseline * (1 + args.margin)
    print(
        f"best baseline {baseline:.4g}; target {target:.4g} ({args.margin:.0%} better), "
        f"{args.experiments} experiments per campaign"
    )
    scores: dict[str, list[int]] = {"builtin": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for name in scores:
                values = asyncio.run(
                    campaign(
                        domain, seed=seed, budget=args.experiments, random=name == "random", scratch=Path(tmp)
                    )
                )
                found = [v for v in values if v is not None]
                best = (min if minimize else max)(found) if found else float("nan")
                scores[name].append(experiments_to(values, target, minimize))
                spent = scores[name][-1]
                print(
                    f"seed {seed} {name:8} to target {spent:>3}  best {best:.4g}"
                    f"  failed {len(values) - len(found)}"
                )
    builtin, rand = statistics.median(scores["builtin"]), statistics.median(scores["random"])
    print(f"median experiments to target: builtin {builtin:g}, random {rand:g} (budget+1 = not reached)")
    print(f"random / builtin = {rand / builtin:.2f}x  (>1: the builtin brain needs fewer experiments)")
    print(f"reached target: builtin {sum(s <= args.experiments for s in scores['builtin'])}/{args.seeds}, "
          f"random {sum(s <= args.experiments for s in scores['random'])}/{args.seeds}")  # fmt: skip


if __name__ == "__main__":
    main()
