"""Scale: does the orchestration's cost stay flat as a campaign grows, and what share of the CPU is it?

    .venv/bin/python bench/scale.py [--experiments 10000] [--workers 8] [--domain DOMAIN]

A whole campaign as `alphalab run` runs it (every service its own process, embedded nats-server, the
builtin brain, the real sandbox), on an adapter written to a temp folder whose candidate does no work:
its fit writes a value computed from its configuration and the harness reads it back, so what costs
time is the lab (and the three short processes each experiment is: prepare, the sandboxed fit,
grade). Phase 2 lets this adapter's hacks through (it is not a harness anyone should trust), so the
campaign starts with `unsafe_no_sandbox`; the runs are sandboxed all the same. `--domain traffic`
(or any adapter) measures a real campaign instead, e.g. the traffic demo's share of orchestration.

Printed, per thousand experiments (from the ledger's timestamps and the Strategist's log): experiments
per second, the Strategist's decision time (`decide` alone, as its `decided` log line reports it),
and dispatch (`proposal-created` to `run-started`, p50 / p99). Then the CPU of Phase 3 (from the
first run started to the campaign finished), from /proc: each service's own CPU (orchestration: the
services, nats-server, and this process, which watches the campaign as the CLI does) against the CPU
of the experiments (harness, sandbox, candidate): the whole machine's busy time less the orchestration.
Not the workers' waited-for children: a sandboxed run's CPU never reaches its worker's rusage (bwrap's
pid namespace), so that would count the harness alone. Run it on an otherwise idle machine.
"""

# ruff: noqa: E402  (the repository root goes on sys.path before the project is imported)
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import throwaway  # beside this script
from rich.console import Console
from rich.table import Table

from alphalab.campaign import run_campaign
from alphalab.stack import Stack
from shared.events import ProposalCreated, RunAnalyzed, RunStarted
from shared.ledger import Ledger
from shared.projections import CampaignView
from shared.settings import Settings

_MANIFEST = """
name = "instant"
objective = "orchestration benchmark: minimise a known function of the configuration; no work is done"
[data]
kind = "custom"
[metric]
name = "value"
direction = "minimize"
[[baselines]]
name = "zero"
description = "a constant"
[entry]
candidate = "candidate.py"
harness = "harness.py"
[budget]
run_seconds = 30
experiments = 10000
campaign_seconds = 86400
[[search_space]]
name = "x"
kind = "float"
low = 0.0
high = 1.0
[[search_space]]
name = "k"
kind = "int"
low = 1
high = 8
[[search_space]]
name = "shape"
kind = "categorical"
choices = ["a", "b", "c"]
"""
_CANDIDATE = """import json, random, sys
config = json.load(open("config.json"))
noise = random.Random(config.get("seed", 0)).gauss(0.0, 0.01)
value = (config.get("x", 0.5) - 0.3) ** 2 + 0.05 * abs(config.get("k", 1) - 3) + noise
value += {"a": 0.0, "b": 0.02, "c": 0.05}[config.get("shape", "a")]
json.dump({"value": value}, open("out.json", "w"))
"""
_HARNESS = """import json, pathlib, sys
command, args = sys.argv[1], sys.argv[2:]
def option(name):
    return args[args.index(name) + 1] if name in args else None
if command == "baselines":
    print(json.dumps({"baselines": [{"name": "zero", "value": 1.0, "metrics": {"value": 1.0}}]}))
elif command == "explore":
    out = pathlib.Path(option("--out")); out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("# instant\\n\\nNo data: the value is a function of the config.\\n")
    print(json.dumps({"findings": ["no data"]}))
elif command == "prepare":
    print("{}")
elif command == "grade":
    try:
        value = json.loads((pathlib.Path(option("--workspace")) / "out.json").read_text())["value"]
        print(json.dumps({"value": value, "metrics": {"value": value}, "failures": []}))
    except (OSError, ValueError, KeyError) as err:
        print(json.dumps({"value": None, "metrics": {}, "failures": [f"no out.json: {err}"]}))
"""
_TICK = os.sysconf("SC_CLK_TCK")


def write_adapter(folder: Path) -> Path:
    return throwaway.write_adapter(folder, manifest=_MANIFEST, candidate=_CANDIDATE, harness=_HARNESS)


@dataclass
class Cpu:
    """CPU seconds of one process (its own, not its children's)."""

    pid: int
    seconds: float


def cpu_of(pid: int) -> Cpu | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime = (int(value) / _TICK for value in fields[11:13])
    return Cpu(pid, utime + stime)


def machine_busy() -> float:
    """CPU seconds this machine has spent busy (all cores) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(value) for value in (user, nice, system, irq, softirq, steal)) / _TICK


def nats_pid(store: Path) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(store) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    return None


@dataclass
class CpuWatch:
    """Samples every service's CPU while the campaign runs: the first sample once a run has started
    (Phase 3), the last at the campaign's end."""

    nats_store: Path
    first: dict[str, Cpu] = field(default_factory=dict)
    last: dict[str, Cpu] = field(default_factory=dict)
    busy: list[float] = field(default_factory=list)  # the machine's, at the first and the last sample

    def tick(self, stack: Stack, view: CampaignView) -> None:
        if not view.kanban.cards:
            return
        sample = {name: cpu for name in stack.names() if (cpu := cpu_of(stack.pid(name) or -1)) is not None}
        if (pid := nats_pid(self.nats_store)) is not None and (cpu := cpu_of(pid)) is not None:
            sample["nats-server"] = cpu
        own = resource.getrusage(resource.RUSAGE_SELF)
        sample["watcher (this process)"] = Cpu(os.getpid(), own.ru_utime + own.ru_stime)
        if not self.first:
            self.first = sample
        self.last = sample
        self.busy[1:] = [machine_busy()]
        if len(self.busy) == 1:
            self.busy.append(self.busy[0])


def per_thousand(values: list[tuple[int, float]], size: int) -> dict[int, list[float]]:
    blocks: dict[int, list[float]] = {}
    for index, value in values:
        blocks.setdefault(index // size, []).append(value)
    return blocks


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def timings(ledger: Path, campaign_id: str) -> tuple[list[float], dict[str, float], dict[str, float]]:
    """The analysed runs' times (seconds, in order), and each proposal's created and first started."""
    analysed: list[float] = []
    created: dict[str, float] = {}
    started: dict[str, float] = {}
    with Ledger(ledger, read_only=True) as store:
        for event in store.events(campaign_id=campaign_id):
            at, payload = event.occurred_at.timestamp(), event.payload
            if isinstance(payload, ProposalCreated):
                created[payload.proposal_id] = at
            elif isinstance(payload, RunStarted):
                started.setdefault(payload.proposal_id, at)
            elif isinstance(payload, RunAnalyzed):
                analysed.append(at)
    return sorted(analysed), created, started


def decisions(log: Path) -> list[tuple[int, float]]:
    """(results so far, seconds) of each decision the Strategist logged."""
    found = []
    for line in log.read_text().splitlines():
        if '"decided"' in line:
            record = json.loads(line)
            found.append((record["results"], record["seconds"]))
    return found


def report(console: Console, home: Path, campaign_id: str, watch: CpuWatch, block: int) -> None:
    analysed, created, started = timings(home / "ledger.duckdb", campaign_id)
    order = sorted(created, key=created.__getitem__)
    dispatch = [(i, started[p] - created[p]) for i, p in enumerate(order) if p in started]
    decided = per_thousand(decisions(home / "logs" / "strategist.log"), block)
    dispatched = per_thousand(dispatch, block)
    grid = Table(title=f"per {block:,} experiments analysed")
    for column in ("experiments", "exp/s", "vs first", "decide p50 ms", "decide p99 ms", "dispatch p50 ms",
                   "dispatch p99 ms"):  # fmt: skip
        grid.add_column(column, justify="right")
    begin = min(started.values()) if started else 0.0
    first_rate = None
    for k in range((len(analysed) + block - 1) // block):
        chunk = analysed[k * block : (k + 1) * block]
        since = analysed[k * block - 1] if k else begin
        rate = len(chunk) / max(chunk[-1] - since, 1e-9)
        first_rate = first_rate or rate
        decide, send = decided.get(k, [0.0]), dispatched.get(k, [0.0])
        grid.add_row(
            f"{k * block + 1:,}-{k * block + len(chunk):,}",
            f"{rate:.2f}",
            f"{rate / first_rate:.2f}",
            f"{1000 * statistics.median(decide):.0f}",
            f"{1000 * p99(decide):.0f}",
            f"{1000 * statistics.median(send):.0f}",
            f"{1000 * p99(send):.0f}",
        )
    console.print(grid)
    cpu = Table(title="CPU seconds in Phase 3 (first run started to campaign finished)")
    for column in ("process", "own CPU s", "per experiment ms"):
        cpu.add_column(column, justify="right")
    orchestration, count = 0.0, max(len(analysed), 1)
    for name, last in watch.last.items():
        first = watch.first.get(name)
        if first is None or first.pid != last.pid:
            cpu.add_row(name, "restarted: not counted", "")
            continue
        orchestration += last.seconds - first.seconds
        cpu.add_row(
            name,
            f"{last.seconds - first.seconds:.1f}",
            f"{1000 * (last.seconds - first.seconds) / count:.1f}",
        )
    experiments = watch.busy[-1] - watch.busy[0] - orchestration
    cpu.add_row("orchestration", f"{orchestration:.1f}", f"{1000 * orchestration / count:.1f}")
    cpu.add_row(
        "experiments (machine busy - orchestration)",
        f"{experiments:.1f}",
        f"{1000 * experiments / count:.1f}",
    )
    console.print(cpu)
    share = orchestration / max(orchestration + experiments, 1e-9)
    console.print(
        f"{len(analysed):,} experiments analysed; orchestration {share:.1%} of the CPU in Phase 3 "
        "(target on the traffic demo: <= 2 %)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--domain", help="a built-in domain or an adapter folder (default: the instant adapter)"
    )
    parser.add_argument("--block", type=int, default=1000, help="experiments per row")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # killed, it stops the stack's services as Ctrl-C does
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        domain = args.domain or str(write_adapter(Path(tmp) / "instant"))
        watch = CpuWatch(settings.nats_dir)
        result = run_campaign(
            settings,
            domain,
            data=None,
            workers=args.workers,
            experiments=args.experiments,
            console=console,
            on_tick=watch.tick,
            unsafe_no_sandbox=args.domain is None,
        )
        console.print(f"campaign {result.campaign_id}: {result.reason}")
        if not result.view.budget.experiments:
            return 1  # it never reached Phase 3: the reason says why
        report(Console(), settings.home, result.campaign_id, watch, args.block)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
