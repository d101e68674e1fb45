"""The skeleton of a harness CLI: the commands the lab calls, their arguments, JSON out, exit codes.

    ADAPTER = Adapter.of(__file__)

    def grade(args):  # args.workspace, args.seconds, args.memory_mb, args.data
        ...
        return verdict(value=score, metrics={"mae": score, ...})

    if __name__ == "__main__":
        sys.exit(main(ADAPTER, baselines=..., export=..., prepare=..., grade=grade))

Each command function takes the parsed arguments and returns the JSON object to print on stdout.
Raise `DataError("FILE: field ... ")` for a problem with the data or the arguments: it is printed as
one line on stderr and the command exits 2. Any other exception is a harness bug (exit 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.domain import Budget, Domain, Manifest, load_domain
from shared.errors import ConfigError

__all__ = ["Adapter", "DataError", "baseline", "main", "verdict"]

DataError = ConfigError
Command = Callable[[argparse.Namespace], Mapping[str, Any]]


@dataclass(frozen=True)
class Adapter:
    """The adapter a harness belongs to: its manifest, budget, candidate entry and held-out data."""

    domain: Domain

    @classmethod
    def of(cls, harness_file: str) -> Adapter:
        """The adapter whose folder holds `harness_file` (pass `__file__`)."""
        return cls(load_domain(str(Path(harness_file).resolve().parent)))

    @property
    def root(self) -> Path:
        return self.domain.root

    @property
    def manifest(self) -> Manifest:
        return self.domain.manifest

    @property
    def budget(self) -> Budget:
        return self.manifest.budget

    @property
    def entry(self) -> str:
        """The candidate's file name, as the workspace holds it."""
        return self.manifest.entry.candidate

    def held_out(self, data: Path | str | None = None) -> tuple[Path, ...]:
        """What the candidate must never see: the manifest's `held_out` and the campaign's data file."""
        return self.domain.held_out(str(data) if data else None)


def verdict(
    value: float | None = None,
    metrics: Mapping[str, float] | None = None,
    failures: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What `grade` prints: a score and its metrics, or the failures that make the candidate invalid."""
    failures = list(failures or [])
    if value is not None and not math.isfinite(value):
        failures.append(f"not finite: the score is {value}")
    valid = not failures and value is not None
    return {
        "valid": valid,
        "value": value if valid else None,
        "metrics": dict(metrics or {}) if valid else {},
        "failures": failures,
        **extra,
    }


def baseline(name: str, value: float, metrics: Mapping[str, float], description: str = "") -> dict[str, Any]:
    """One entry of `baselines`' list; `name` must match a `[[baselines]]` name in the manifest."""
    return {"name": name, "description": description, "value": value, "metrics": dict(metrics)}


def main(
    adapter: Adapter,
    *,
    baselines: Command,
    export: Command,
    prepare: Command,
    grade: Command,
    explore: Command | None = None,
    argv: list[str] | None = None,
) -> int:
    """Parse the lab's command line, run the command, print its JSON; the exit code to return."""
    arguments = _parser(adapter, explore is not None).parse_args(argv)
    commands = {"baselines": baselines, "export": export, "prepare": prepare, "grade": grade}
    if explore is not None:
        commands["explore"] = explore
    try:
        if arguments.data is not None and not arguments.data.exists():
            raise DataError(f"--data: {arguments.data} does not exist")
        result = commands[arguments.command](arguments)
    except ConfigError as err:
        print(f"harness: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _parser(adapter: Adapter, with_explore: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=f"The {adapter.manifest.name} adapter's harness; prints JSON."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", type=Path, help="the user's own data file (default: the adapter's data)")
    commands.add_parser("baselines", parents=[data], help="score the reference methods on the test split")
    exporting = commands.add_parser(
        "export", parents=[data], help="the train split as Parquet, for the explorer"
    )
    exporting.add_argument("--out", type=Path, required=True)
    preparing = commands.add_parser("prepare", parents=[data], help="write what a candidate may train on")
    preparing.add_argument("--workspace", type=Path, required=True)
    grading = commands.add_parser("grade", parents=[data], help="run the candidate's graded step, score it")
    grading.add_argument("--workspace", type=Path, required=True)
    grading.add_argument(
        "--seconds", type=float, default=adapter.budget.run_seconds, help="wall and CPU limit"
    )
    grading.add_argument(
        "--memory-mb", type=int, default=adapter.budget.run_memory_mb, help="memory limit (MB)"
    )
    if with_explore:
        exploring = commands.add_parser(
            "explore", parents=[data], help="profile the train split: report + plots"
        )
        exploring.add_argument("--out", type=Path, required=True, help="a folder for report.md and plots")
    return parser
