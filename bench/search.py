"""Search efficiency: experiments the builtin brain needs to beat a baseline by a margin, vs random.

    .venv/bin/python bench/search.py [--domain NAME_OR_PATH] [--data FILE] [--seeds 5] [--experiments 12]
                                     [--margins 0.06,0.08,0.10,0.11] [--versus BASELINE]

Both searchers propose over the same adapter search space with the Strategist's own code
(`services.strategist.search.propose`): the builtin brain as the Strategist runs it (random start-up,
then TPE), and random search (the same call with start-up never ending). Every proposal is a real
experiment: the Worker's `execute` (harness prepare, sandboxed candidate fit, harness grade), two at
a time. Any adapter works (`--domain` takes a built-in name or a folder, `--data` is handed to its
harness), with the manifest's metric direction. Margins are measured against `--versus`, a baseline
the harness prints (default: the best one). A campaign's score, for each margin, is the number of
experiments until one beats that baseline by the margin; a campaign that never does scores budget + 1
(medians stay honest, if censored). Also printed: each campaign's best value, how far it beats the
baseline in percent, and its wall-clock seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.strategist.search import Outcome, propose  # noqa: E402
from services.worker.execution import execute  # noqa: E402
from shared.domain import Domain, load_domain  # noqa: E402
from shared.events import RunFinished  # noqa: E402

RANDOM_FOREVER = 10**9
SEARCHERS = ("builtin", "random")


@dataclass(frozen=True)
class Campaign:
    """One searcher's results in proposal order (None for a failed run), and how long they took."""

    searcher: str
    seed: int
    values: list[float | None]
    seconds: float


async def _noop() -> None:
    return None


async def evaluate(
    domain: Domain, config: dict, seed: int, data: str | None, workspace: Path
) -> float | None:  # type: ignore[type-arg]
    result = await execute(
        domain, run_id="bench", proposal_id="bench", config=config, seed=seed, data=data,
        workspace=workspace, on_tick=_noop,
    )  # fmt: skip
    return result.value if isinstance(result, RunFinished) else None


async def campaign(
    domain: Domain, *, seed: int, budget: int, random: bool, data: str | None, scratch: Path
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
                evaluate(domain, c, seed, data, scratch / f"{seed}-{random}-{len(values) + i}")
                for i, c in enumerate(configs)
            )
        )
        for config, value in zip(configs, results, strict=True):
            history.append(Outcome(config, value, failed=value is None))
            values.append(value)
    return values


def baselines(domain: Domain, data: str | None) -> dict[str, float]:
    """Each baseline's value, as the harness prints them: the document from its last line opening `{`."""
    argv = domain.harness_argv("baselines", *(("--data", data) if data else ()))
    with tempfile.TemporaryDirectory() as scratch:
        text = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=scratch).stdout.strip()
    document = json.loads(text[text.rfind("\n{") + 1 :] if "\n{" in text else text)
    return {entry["name"]: float(entry["value"]) for entry in document["baselines"]}


def improvement(value: float, reference: float, minimize: bool) -> float:
    """How much better `value` is than `reference`, as a fraction of its size (negative when worse)."""
    if reference == 0:
        return math.nan
    return (reference - value if minimize else value - reference) / abs(reference)


def experiments_to(values: list[float | None], target: float, minimize: bool) -> int:
    for index, value in enumerate(values, start=1):
        if value is not None and (value <= target if minimize else value >= target):
            return index
    return len(values) + 1


def best_of(values: list[float | None], minimize: bool) -> float | None:
    valid = [value for value in values if value is not None]
    return (min if minimize else max)(valid) if valid else None


def print_bests(campaigns: list[Campaign], versus: str, reference: float, minimize: bool) -> None:
    """Per campaign and per searcher (mean over seeds): the best value and its margin over `versus`."""
    print(f"searcher  seed  best       vs {versus}   seconds")
    for searcher in SEARCHERS:
        mine = [c for c in campaigns if c.searcher == searcher]
        for run in mine:
            best = best_of(run.values, minimize)
            shown = "no valid run" if best is None else _with_margin(best, reference, minimize)
            print(f"{searcher:8}  {run.seed:>4}  {shown:<28} {run.seconds:>7.0f}")
        bests = [b for b in (best_of(run.values, minimize) for run in mine) if b is not None]
        if bests:
            spread = f" (sd {statistics.stdev(bests):.4f})" if len(bests) > 1 else ""
            mean = statistics.mean(bests)
            print(
                f"{searcher:8}  mean  {_with_margin(mean, reference, minimize)}{spread}"
                f"   {statistics.mean(run.seconds for run in mine):.0f} s a campaign"
            )


def _with_margin(value: float, reference: float, minimize: bool) -> str:
    return f"{value:<9.4f}  {improvement(value, reference, minimize):+.1%}"


def print_margins(
    campaigns: list[Campaign], margins: list[float], reference: float, minimize: bool, budget: int
) -> None:
    """Per margin: median experiments to reach it, per searcher, and how many campaigns did."""
    seeds = len(campaigns) // len(SEARCHERS)
    print("margin  target   median experiments to target (budget+1 = never)   reached")
    for margin in margins:
        target = reference * (1 - margin) if minimize else reference * (1 + margin)
        spent = {
            name: [experiments_to(c.values, target, minimize) for c in campaigns if c.searcher == name]
            for name in SEARCHERS
        }
        builtin, rand = statistics.median(spent["builtin"]), statistics.median(spent["random"])
        reached = {name: sum(s <= budget for s in values) for name, values in spent.items()}
        print(
            f"{margin:>5.0%}  {target:.4f}  builtin {builtin:>4g}  random {rand:>4g}"
            f"  random/builtin {rand / builtin:.2f}x"
            f"   builtin {reached['builtin']}/{seeds}, random {reached['random']}/{seeds}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="traffic", help="a built-in adapter's name or a folder")
    parser.add_argument("--data", default=None, help="a data file for the adapter's harness")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--experiments", type=int, default=12)
    parser.add_argument(
        "--margins", default="0.06,0.08,0.10,0.11", help="comma-separated, e.g. 0.08 = 8%% better"
    )
    parser.add_argument("--versus", default=None, help="the baseline margins are measured against")
    args = parser.parse_args()
    domain = load_domain(args.domain)
    data = str(Path(args.data).resolve()) if args.data else None
    minimize = domain.manifest.metric.direction == "minimize"
    scores = baselines(domain, data)
    versus = args.versus or (min if minimize else max)(scores, key=scores.__getitem__)
    if versus not in scores:
        parser.error(f"--versus: {versus!r} is not a baseline the harness printed ({', '.join(scores)})")
    print("baselines: " + ", ".join(f"{name} {value:.4g}" for name, value in scores.items()))
    reference = scores[versus]
    print(f"versus {versus} ({reference:.4g}); {args.experiments} experiments a campaign, {args.seeds} seeds")
    campaigns: list[Campaign] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for name in SEARCHERS:
                started = time.perf_counter()
                values = asyncio.run(
                    campaign(
                        domain, seed=seed, budget=args.experiments, random=name == "random", data=data,
                        scratch=Path(tmp),
                    )
                )  # fmt: skip
                campaigns.append(Campaign(name, seed, values, time.perf_counter() - started))
                shown = " ".join("fail" if v is None else f"{v:.3f}" for v in values)
                print(f"seed {seed} {name:8} {shown}", flush=True)
    print_bests(campaigns, versus, reference, minimize)
    margins = [float(m) for m in args.margins.split(",")]
    print_margins(campaigns, margins, reference, minimize, args.experiments)


if __name__ == "__main__":
    main()
