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
from shared.sandbox import bubblewrap, cgroup, namespaces, seccomp, stage, workspace
from shared.sandbox.access import Access

__all__ = ["MODES", "Isolation", "isolation"]

_TRIAL_UID = 65534
_DENIED_SUMMARY = "keyrings, ptrace, mounts, new namespaces, bpf, perf events, userfaultfd, io_uring, ..."

Mode = Literal["bubblewrap", "namespaces", "none"]
MODES = ("auto", "bubblewrap", "namespaces", "none")
_ALWAYS = (
    ("environment", "built from scratch: no API keys, tokens or credentials"),
    ("limits", "CPU time, address space, file size and no core dumps (setrlimit)"),
    ("wall clock", "watched; the whole process tree is killed at the limit"),
    ("disk", "the workspace is watched; the run is killed when it is full (bytes or inodes)"),
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

    @property
    def hides_processes(self) -> bool:
        """Whether a run cannot read other processes' environments (a pid namespace of its own, or a
        uid of its own): what keeps an agent's shell from the API keys in its Worker's environment."""
        return self.mode == "bubblewrap" or (self.mode == "namespaces" and self.own_user)


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
    if mode == "namespaces" and os.geteuid() != 0:
        return "creating namespaces without a user namespace needs root"
    with tempfile.TemporaryDirectory() as scratch:
        access = Access(Path(scratch))
        true = shutil.which("true") or "/bin/true"
        try:
            if mode == "bubblewrap":
                if os.geteuid() == 0:
                    os.chown(scratch, _TRIAL_UID, _TRIAL_UID)
                program = seccomp.program_fd()
                try:
                    wrapped = bubblewrap.command(
                        [true],
                        cwd=Path(scratch),
                        access=access,
                        uid=_TRIAL_UID if os.geteuid() == 0 else None,
                        tmp_mb=1,
                        tmp_inodes=64,
                        seccomp_fd=program,
                    )
                    result = subprocess.run(
                        wrapped.argv,
                        capture_output=True,
                        timeout=30,
                        preexec_fn=wrapped.preexec,
                        pass_fds=(program,),
                    )
                finally:
                    os.close(program)
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
        owner = "owned by the run's own uid" if root else "owned by your user"
        protections += [
            ("user", f"a user namespace of its own per run ({owner}); none further may be made"),
            ("ipc", "an IPC namespace of its own: SysV shm, semaphores, queues, POSIX mqueues die with it"),
            ("network", "a network namespace of its own, no interfaces up (abstract unix sockets included)"),
            ("processes", "pid, UTS and cgroup namespaces of its own; killed as a whole"),
            (
                "seccomp",
                f"{len(seccomp.DENIED)} syscalls denied with EPERM ({_DENIED_SUMMARY}); "
                "clone3 ENOSYS, clone with namespace flags EPERM; i386/x32 calls and other arches killed",
            ),
            ("filesystem", "an empty root; system and Python folders read-only; only the workspace writable"),
            ("held-out data", "masked; the host's other files (ledger, harness, other runs) do not exist"),
        ]
        if root:
            protections.append(
                (
                    "host paths",
                    f"none named inside: workspace at {stage.WORKSPACE}, Python at "
                    f"{stage.PYTHON} and {stage.VENV} (overlays), argv and environment translated",
                )
            )
            protections.append(("scratch", "/tmp and /dev/shm: a private tmpfs limited in bytes and inodes"))
        else:
            missing.append("host paths: the workspace and Python are bound at their host paths (needs root)")
    elif mode == "namespaces":
        detail = "Linux namespaces entered by the child (no bubblewrap)"
        protections += [
            ("network", "none: a network namespace of its own with no interfaces up"),
            ("ipc", "an IPC namespace of its own"),
            ("held-out data", "masked by mounts in a mount namespace of its own"),
        ]
        missing.append(
            "filesystem: the host's files stay visible" + ("" if own_user else " and writable (root)")
        )
        missing.append("seccomp: no syscall filter without bubblewrap")
        missing.append("user: no user namespace; kernel keyrings are shared by uid")
    else:
        detail = "rlimits only: " + "; ".join(f"{m}: {why}" for m, why in (problems or {}).items())
        missing += [
            "network: not cut off",
            "filesystem: the host's files are visible",
            "held-out data: readable",
            "seccomp: no syscall filter",
            "ipc: SysV IPC, mqueues and keyrings are shared with the host",
        ]
    if own_user:
        protections.append(
            ("uid", "a uid of its own per run: the process limit applies, others' files are not writable")
        )
    elif root:
        missing.append("processes: not bounded (root is exempt from the process limit)")
    else:
        protections.append(("uid", "your user: the process limit counts your other processes too"))
    memory = cgroup.available()
    if mode != "none" and memory is None:
        protections.append(
            ("memory", f"the whole run's memory, by the kernel: a memory cgroup per run ({cgroup.where()})")
        )
    else:
        missing.append(
            "memory: no memory cgroup for runs"
            + (f" ({memory})" if memory else "")
            + "; each process's address space is limited instead (RLIMIT_AS), not the run's total"
        )
    disk = workspace.mountable()
    if disk is None:
        protections.append(
            ("workspace", "a tmpfs of its own per grading, size= and nr_inodes=: every byte and inode counts")
        )
    else:
        missing.append(f"workspace: not a limited filesystem ({disk})")
    protections += _ALWAYS
    return Isolation(mode, detail, own_user, tuple(protections), tuple(missing))
