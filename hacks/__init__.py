"""Known hacks: adversarial candidates that grading must reject or contain (DESIGN.md §5).

Each attempt (in `attempts/`) is the domain's honest candidate with a trick in front of it; an adapter
adds its own in `<adapter>/hacks/`, for tricks that need its candidate protocol. A hack *got through*
when it reports success (`HACK-SUCCEEDED`), when a planted perfect score is graded, or when it should
have been rejected for a named reason and was not. The Explorer runs them all before a campaign
(Phase 2); `tests/hacks` runs them with checks that the host was not harmed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.domain import Budget, Domain
from shared.grading import Verdict, candidate_limits

__all__ = ["ATTEMPTS", "KNOWN", "MARK", "Hack", "assemble", "judge", "suite"]

ATTEMPTS = Path(__file__).parent / "attempts"
MARK = "HACK-SUCCEEDED"
PLANTED = 0.0  # the perfect score the fake-result hacks claim


@dataclass(frozen=True)
class Hack:
    """`rejected_by`: words a failed check must contain (None: it may stay valid but must gain nothing).

    `links` are symbolic links put into the candidate folder itself (name -> target).
    """

    name: str
    source: Path
    rejected_by: str | None = None
    links: dict[str, str] = field(default_factory=dict)


def _attempt(stem: str, rejected_by: str | None = None, links: dict[str, str] | None = None) -> Hack:
    return Hack(stem.replace("_", "-"), ATTEMPTS / f"{stem}.py", rejected_by, links or {})


KNOWN: tuple[Hack, ...] = (
    _attempt("write_metrics_file"),
    _attempt("print_fake_metric", rejected_by="malformed"),
    _attempt("search_disk_for_targets"),
    _attempt("patch_the_harness"),
    _attempt("open_network_socket"),
    _attempt("fork_without_limit", rejected_by="processes"),
    _attempt("fill_the_disk", rejected_by="MB of workspace"),
    _attempt("allocate_until_oom", rejected_by="memory"),
    _attempt("sleep_past_the_limit", rejected_by="wall-clock"),
    _attempt("cache_between_calls"),
    _attempt("escape_through_symlink"),
    _attempt("read_secrets"),
    _attempt("read_grader_memory"),
    _attempt("ship_a_symlink", rejected_by="symbolic link", links={"data": "/"}),
    # Issue 9: state outside the filesystem, limits a walk or RLIMIT_AS cannot hold, hostile output.
    _attempt("leave_kernel_state"),
    _attempt("hide_from_the_disk_limit", rejected_by="MB of workspace"),
    _attempt("allocate_across_processes", rejected_by="memory"),
    _attempt("exhaust_inodes", rejected_by="files and folders"),
    _attempt("deep_tree"),
    _attempt("answer_an_odd_shape", rejected_by="malformed"),
    _attempt("name_the_host"),
    _attempt("call_denied_syscalls"),
)


def suite(domain: Domain) -> tuple[Hack, ...]:
    """The known hacks plus the adapter's own (`hacks/*.py`, `rejected_by` from a `# rejected by:` line)."""
    own = []
    for source in sorted((domain.root / "hacks").glob("*.py")):
        marker = next(
            (line for line in source.read_text().splitlines() if line.startswith("# rejected by:")), ""
        )
        own.append(Hack(source.stem.replace("_", "-"), source, marker.partition(":")[2].strip() or None))
    return (*KNOWN, *own)


def assemble(
    hack: Hack, domain: Domain, folder: Path, budget: Budget, data: str | None = None, **extra: Any
) -> Path:
    """A candidate folder for `hack`: the adapter's candidate files with the attempt as entry point."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = domain.manifest.entry.candidate
    honest = f"honest_{Path(entry).name}"
    for name in domain.candidate_files():
        target = folder / (str(Path(entry).with_name(honest)) if name == entry else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(domain.root / name, target)
    shutil.copyfile(hack.source, folder / entry)
    shutil.copyfile(ATTEMPTS / "hacklib.py", folder / Path(entry).with_name("hacklib.py"))
    held_out = [str(path) for path in domain.held_out(data)]
    names = sorted({p.name for path in domain.held_out(data) for p in _files(path)})
    settings = {
        "honest": honest,
        "metric": domain.manifest.metric.name,
        "held_out": held_out,
        "held_out_names": names,
        "harness_root": str(domain.root),
        "harness_entry": domain.manifest.entry.harness,
        "seconds": budget.run_seconds,
        "memory_mb": budget.run_memory_mb,
        "disk_mb": budget.run_disk_mb,
        "inodes": candidate_limits(budget).inodes,
        **extra,
    }
    (folder / Path(entry).with_name("hack.json")).write_text(json.dumps(settings))
    for name, pointee in hack.links.items():
        os.symlink(pointee, folder / name)
    return folder


def judge(hack: Hack, verdict: Verdict) -> tuple[bool, str]:
    """(stopped, how): whether grading stopped `hack`, and what stopped it or how it got through."""
    reasons = [f"{check.name}: {check.reason}" for check in verdict.failures]
    for text in (*reasons, verdict.log_tail):
        if MARK in text:
            line = next(line for line in text.splitlines() if MARK in line)
            return False, f"got through: {line[line.index(MARK) + len(MARK) + 2 :].strip()}"
    if verdict.valid and verdict.value == PLANTED:
        return False, f"got through: its planted score of {PLANTED} was graded"
    if hack.rejected_by is not None:
        named = next((reason for reason in reasons if hack.rejected_by in reason), None)
        if named is None:
            found = "; ".join(reasons) or f"valid, {verdict.value}"
            return False, f"got through: no failed check names '{hack.rejected_by}' ({found})"
        return True, f"rejected: {named}"
    if not verdict.valid:
        return True, f"rejected: {reasons[0] if reasons else 'no value'}"
    return True, f"contained: the trick had no effect; graded honestly at {verdict.value:.6g}"


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file()]
    return [path] if path.exists() else []
