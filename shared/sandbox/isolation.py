"""Which isolation this machine gives a sandboxed process, found by trying it, and what it lacks.

`ALPHALAB_SANDBOX` picks a mode (`auto`, the default, takes the strongest that works): `bubblewrap`
(namespaces and an empty root with read-only binds), `namespaces` (root only: the host's files stay
visible, held-out data masked), or `none` (limits, clean environment and whole-tree kill only).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.errors import ConfigError
from shared.sandbox import bubblewrap, namespaces
from shared.sandbox.access import Access

__all__ = ["MODES", "Isolation", "isolation"]

Mode = Literal["bubblewrap", "namespaces", "none"]
MODES = ("auto", "bubblewrap", "namespaces", "none")
_ALWAYS = (
    ("environment", "built from scratch: no API keys, tokens or credentials"),
    ("limits", "CPU time, address space, file size and no core dumps (setrlimit)"),
    ("wall clock", "watched; the whole process tree is killed at the limit"),
    ("disk", "the workspace's size is watched; the run is killed above its limit"),
)


@dataclass(frozen=True)
class Isolation:
    mode: Mode
    detail: str
    own_user: bool  # each run becomes a uid of its own (we run as root): process limits apply
    protections: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


@functools.cache
def isolation(requested: str = "auto") -> Isolation:
    """The isolation in force for `requested` (a MODES value); ConfigError if it is not available."""
    if requested not in MODES:
        raise ConfigError(f"ALPHALAB_SANDBOX: {requested!r} is not one of {', '.join(MODES)}")
    problems: dict[str, str] = {}
    for mode in ("bubblewrap", "namespaces") if requested == "auto" else (requested,):
        if mode == "none":
            break
        problem = _try(mode)
        if problem is None:
            return _report(mode)
        problems[mode] = problem
    if requested not in ("auto", "none"):
        raise ConfigError(f"ALPHALAB_SANDBOX: {requested} is not available here: {problems[requested]}")
    return _report("none", problems)


def _try(mode: str) -> str | None:
    """Why `mode` does not work here, or None if a trivial command ran under it."""
    if platform.system() != "Linux":
        return f"needs Linux (this is {platform.system()})"
    if mode == "bubblewrap" and not shutil.which(bubblewrap.BWRAP):
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    if mode == "bubblewrap" and os.geteuid() == 0 and not shutil.which(bubblewrap.SETPRIV):
        return "setpriv (util-linux) is not installed"
    if mode == "namespaces" and os.geteuid() != 0:
        return "creating namespaces without a user namespace needs root"
    with tempfile.TemporaryDirectory() as scratch:
        access = Access(Path(scratch))
        true = shutil.which("true") or "/bin/true"
        try:
            if mode == "bubblewrap":
                uid = 65534 if os.geteuid() == 0 else None
                argv = bubblewrap.command([true], cwd=Path(scratch), access=access, uid=uid, tmp_mb=1)
                result = subprocess.run(argv, capture_output=True, timeout=30)
            else:
                result = subprocess.run(
                    [true], capture_output=True, timeout=30, preexec_fn=namespaces.enter(access, 1)
                )
        except (OSError, subprocess.SubprocessError) as err:
            return f"a trial run failed: {err}"
    if result.returncode != 0:
        return f"a trial run failed: {result.stderr.decode(errors='replace').strip() or result.returncode}"
    return None


def _report(mode: Mode, problems: dict[str, str] | None = None) -> Isolation:
    root = os.geteuid() == 0
    own_user = root and (
        mode == "bubblewrap"
        or (mode == "namespaces" and namespaces.reachable_by_anyone(Path(sys.executable)))
    )
    protections: list[tuple[str, str]] = []
    missing: list[str] = []
    if mode == "bubblewrap":
        version = subprocess.run(
            [bubblewrap.BWRAP, "--version"], capture_output=True, text=True
        ).stdout.strip()
        detail = f"{version or 'bubblewrap'} at {shutil.which(bubblewrap.BWRAP)}"
        protections += [
            ("network", "none: a network namespace of its own with no interfaces up"),
            ("filesystem", "an empty root; system and Python folders read-only; only the workspace writable"),
            ("held-out data", "masked; the host's other files (ledger, harness, other runs) do not exist"),
            ("processes", "a pid namespace of its own; killed as a whole"),
        ]
    elif mode == "namespaces":
        detail = "Linux namespaces entered by the child (no bubblewrap)"
        protections += [
            ("network", "none: a network namespace of its own with no interfaces up"),
            ("held-out data", "masked by mounts in a mount namespace of its own"),
        ]
        missing.append(
            "filesystem: the host's files stay visible" + ("" if own_user else " and writable (root)")
        )
    else:
        detail = "rlimits only: " + "; ".join(f"{m}: {why}" for m, why in (problems or {}).items())
        missing += [
            "network: not cut off",
            "filesystem: the host's files are visible",
            "held-out data: readable",
        ]
    if own_user:
        protections.append(
            ("user", "a uid of its own per run: the process limit applies, others' files are not writable")
        )
    elif root:
        missing.append("processes: not bounded (root is exempt from the process limit)")
    else:
        protections.append(("user", "your user: the process limit counts your other processes too"))
    protections += _ALWAYS
    return Isolation(mode, detail, own_user, tuple(protections), tuple(missing))
