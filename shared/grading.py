"""Grading one candidate through its domain's harness: the flow a worker, `alphalab evaluate` and the
harness acceptance tests share.

    workspace ← harness `prepare` (trusted, no sandbox: it reads the data)
    workspace ← candidate files (regular files only) and its config
    candidate `fit` in the sandbox: workspace writable, held-out data masked, limits on everything
    harness `grade` (trusted): runs the candidate's predict step itself, sandboxed, on data it never had

The metric is always the harness's, read from the harness's own output. Whatever the candidate prints
or writes is kept as a log tail and nothing else. The harness's files are digested before and after,
so a run that changed them is invalid whatever it scored.
"""

from __future__ import annotations

import json
import math
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.domain import Budget, Domain
from shared.sandbox import Access, Limits, Outcome, run_async, tree
from shared.sandbox import workspace as limited_workspace

__all__ = [
    "HARNESS_SECONDS",
    "Check",
    "Verdict",
    "candidate_limits",
    "evaluate",
    "harness_check",
    "run_harness",
]

HARNESS_SECONDS = 120.0
_HARNESS_LIMITS = Limits(wall_seconds=HARNESS_SECONDS)  # trusted code: a clock, nothing else
CONFIG_FILE = "config.json"
_FIT_FILE_MB = 512
_FIT_PROCESSES = 256  # threads count too
_CANDIDATE_MAX_MB = 64
_CANDIDATE_MAX_FILES = 1000
_CANDIDATE_MAX_DEPTH = 16
_INODES_PER_MB = 64  # a workspace's inode limit, per MB of its disk limit (at least _MIN_INODES)
_MIN_INODES = 4096
_LOG_CHARS = 2000
_VERDICT_MAX_CHARS = 1 << 16
_MAX_METRICS = 64
_MAX_FAILURES = 16


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """What grading found: `valid` only if every check passed and the harness gave a finite value."""

    checks: tuple[Check, ...]
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    log_tail: str = ""

    @property
    def valid(self) -> bool:
        return self.value is not None and all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, **asdict(self)}


def candidate_limits(budget: Budget) -> Limits:
    """The sandbox limits of a candidate's fit step under a domain's budget."""
    return Limits(
        wall_seconds=budget.run_seconds,
        memory_mb=budget.run_memory_mb,
        file_mb=_FIT_FILE_MB,
        disk_mb=budget.run_disk_mb,
        inodes=max(_MIN_INODES, budget.run_disk_mb * _INODES_PER_MB),
        processes=_FIT_PROCESSES,
    )


async def evaluate(
    domain: Domain,
    base: Path,
    *,
    candidate: Path | None = None,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    data: str | None = None,
    budget: Budget | None = None,
    on_tick: Callable[[], Awaitable[None]] | None = None,
) -> Verdict:
    """Grade `candidate` (a folder; default: the adapter's own candidate files) under `base`, a scratch
    folder of this run's that is emptied first. `budget` overrides the domain's own."""
    budget = budget or domain.manifest.budget
    limits = candidate_limits(budget)
    limited_workspace.release(base / "workspace")  # one a crashed grading left mounted
    tree.remove(base)
    workspace = base / "workspace"
    workspace.mkdir(parents=True)
    (base / "harness").mkdir()
    size, inodes = limits.disk_mb or budget.run_disk_mb, limits.inodes or _MIN_INODES
    with limited_workspace.limited(workspace, size, inodes):
        return await _graded(domain, base, candidate, config, seed, data, budget, limits, on_tick)


async def _graded(
    domain: Domain,
    base: Path,
    candidate: Path | None,
    config: dict[str, Any] | None,
    seed: int,
    data: str | None,
    budget: Budget,
    limits: Limits,
    on_tick: Callable[[], Awaitable[None]] | None,
) -> Verdict:
    """The grading itself, in `base/workspace` (a limited filesystem where one could be mounted)."""
    workspace, scratch = base / "workspace", base / "harness"
    checks: list[Check] = []
    digest = domain.harness_digest()

    async def harness(command: str, *args: str) -> Outcome:
        return await run_harness(domain, command, workspace, scratch, *args, data=data, on_tick=on_tick)

    def verdict(
        *,
        value: float | None = None,
        metrics: dict[str, float] | None = None,
        spent: float = 0.0,
        log: str = "",
    ) -> Verdict:
        intact = domain.harness_digest() == digest
        checks.append(
            Check("harness intact", intact, "" if intact else "the harness's files changed during the run")
        )
        return Verdict(tuple(checks), value if intact else None, metrics or {}, spent, log[-_LOG_CHARS:])

    prepared = await harness("prepare")
    checks.append(harness_check("prepare", prepared))
    if not checks[-1].passed:
        return verdict(log=prepared.stderr_tail)
    problem = _copy_candidate(candidate or domain.root, domain, workspace, from_adapter=candidate is None)
    checks.append(Check("candidate files", problem is None, problem or ""))
    if problem is not None:
        return verdict()
    (workspace / CONFIG_FILE).write_text(json.dumps({**(config or {}), "seed": seed}, indent=2))

    access = Access(workspace, writable=True, hidden=domain.held_out(data))
    fit = await run_async(
        domain.candidate_argv("fit", "--config", CONFIG_FILE),
        cwd=workspace,
        limits=limits,
        access=access,
        on_tick=on_tick,
    )
    failure = fit.failure(limits)
    checks.append(Check("fit", failure is None, f"candidate fit {failure}" if failure else ""))
    log = fit.stderr_tail or fit.stdout_tail
    if failure is not None:
        return verdict(spent=fit.wall_seconds, log=log)

    graded = await harness(
        "grade", "--seconds", f"{budget.run_seconds:g}", "--memory-mb", str(budget.run_memory_mb)
    )
    spent = fit.wall_seconds + graded.wall_seconds
    checks.append(harness_check("grade", graded))
    result = _last_json(graded.stdout_tail) if checks[-1].passed else None
    if result is None:
        if checks[-1].passed:
            checks[-1] = Check("grade", False, "harness grade printed no JSON verdict")
        return verdict(spent=spent, log=graded.stderr_tail or log)
    failures = result.get("failures")
    reasons = failures if isinstance(failures, list) else [failures] if failures else []
    for reason in reasons[:_MAX_FAILURES]:
        checks.append(Check("predict", False, str(reason)[:_LOG_CHARS]))
    value = _finite(result.get("value"))
    given = str(result.get("value"))[:80]
    reason = "" if value is not None else f"the harness gave no finite value ({given})"
    checks.append(Check("metric", value is not None, reason))
    raw = result.get("metrics")
    pairs = list(raw.items())[:_MAX_METRICS] if isinstance(raw, dict) else []
    metrics = {str(k)[:80]: v for k, v in ((k, _finite(v)) for k, v in pairs) if v is not None}
    return verdict(value=value, metrics=metrics, spent=spent, log=log)


def _finite(value: object) -> float | None:
    """A finite float from a JSON number (not a bool), else None; huge integers are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


async def run_harness(
    domain: Domain,
    command: str,
    workspace: Path,
    scratch: Path,
    *args: str,
    data: str | None = None,
    on_tick: Callable[[], Awaitable[None]] | None = None,
) -> Outcome:
    """One command of the trusted harness on `workspace`, run from `scratch` with only a clock."""
    data_args = ["--data", data] if data else []
    argv = domain.harness_argv(command, "--workspace", str(workspace), *args, *data_args)
    return await run_async(argv, cwd=scratch, limits=_HARNESS_LIMITS, access=None, on_tick=on_tick)


def harness_check(command: str, outcome: Outcome) -> Check:
    """Whether a harness command ran to its end, and if not, why (with its stderr's tail)."""
    failure = outcome.failure(_HARNESS_LIMITS)
    if failure is None:
        return Check(command, True)
    return Check(command, False, f"harness {command} {failure}: {outcome.stderr_tail.strip()[-_LOG_CHARS:]}")


def _copy_candidate(source: Path, domain: Domain, workspace: Path, *, from_adapter: bool) -> str | None:
    """Copy the candidate's files into the workspace, or say why they are refused.

    From an adapter, only its candidate files; from a candidate folder, every file in it. Links and
    special files are refused (a link is a way out of the workspace), and so is an oversized folder
    (bytes, files or depth).
    """
    if not source.is_dir():
        return f"{source} is not a folder"
    if from_adapter:
        names = list(domain.candidate_files())
    else:
        listed = _files_in(source)
        if isinstance(listed, str):
            return listed
        names = listed
    total = 0
    for name in names:
        path = source / name
        mode = path.lstat().st_mode if path.exists() or path.is_symlink() else 0
        if stat.S_ISLNK(mode):
            return f"{name} is a symbolic link; a candidate is regular files only"
        if not stat.S_ISREG(mode):
            return f"{name} is not a regular file"
        total += path.stat().st_size
        if total > _CANDIDATE_MAX_MB * 1024 * 1024:
            return f"the candidate's files exceed {_CANDIDATE_MAX_MB} MB"
    entry = domain.manifest.entry.candidate
    if entry not in names:
        return f"no {entry} (the domain's candidate entry point) in {source}"
    for name in names:
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, workspace / name, follow_symlinks=False)
    return None


def _files_in(folder: Path) -> list[str] | str:
    """Every entry under `folder` that is not a folder, relative (links included so they can be
    refused), walked by descriptor; or why the folder is refused (too many files, too deep)."""
    found = []
    for entry in tree.walk(folder, max_depth=_CANDIDATE_MAX_DEPTH + 1, named=True):
        if entry.depth > _CANDIDATE_MAX_DEPTH:
            return f"the candidate's folders are nested deeper than {_CANDIDATE_MAX_DEPTH}"
        if "__pycache__" in entry.parts or stat.S_ISDIR(entry.stat.st_mode):
            continue
        found.append("/".join(entry.parts))
        if len(found) > _CANDIDATE_MAX_FILES:
            return f"the candidate has more than {_CANDIDATE_MAX_FILES} files"
    return sorted(found)


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The harness's JSON verdict: the last line of its standard output that parses as an object.

    Defensive: the line is bounded, and any failure to parse it (depth, size, type) means no verdict.
    """
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            if len(line) > _VERDICT_MAX_CHARS:
                return None
            try:
                parsed = json.loads(line)
            except (ValueError, RecursionError):
                return None
            return parsed if isinstance(parsed, dict) else None
    return None
