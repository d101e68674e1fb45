"""A memory cgroup per run: the kernel bounds the resident memory of all its processes together.

RLIMIT_AS is per process, so a run of several processes could hold several times its limit. Each run
gets a child of our own memory cgroup (cgroup v2's unified tree, or v1's memory hierarchy), with
`memory.max` (v2) or `memory.limit_in_bytes` and, where swap is accounted, `memory.memsw.limit_in_bytes`
(v1) set; the child joins it before it executes, so everything it starts is inside. At the end the
group's processes are killed (`cgroup.kill` on v2) and the group removed. Where no controller is
writable, `available()` says why and runs fall back to the per-process address-space limit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

__all__ = ["Group", "available", "create"]

log = structlog.get_logger(__name__)
_ROOT = Path("/sys/fs/cgroup")
_REMOVE_SECONDS = 5.0
_STALE_SECONDS = 600.0


@dataclass(frozen=True)
class _Parent:
    path: Path
    version: int


@functools.cache
def _parent() -> _Parent | str:
    """Our own memory cgroup, if we may create children in it; else why not."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError as err:
        return f"cannot read /proc/self/cgroup ({err})"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            parent = _Parent(_ROOT / "memory" / path.lstrip("/"), 1)
            break
    else:
        unified = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
        if unified is None:
            return "no memory controller in /proc/self/cgroup"
        parent = _Parent(_ROOT / unified.lstrip("/"), 2)
        if "memory" not in _read(parent.path / "cgroup.controllers").split():
            return f"the memory controller is not enabled for {parent.path} (cgroup v2)"
    probe = parent.path / f"alphalab-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError as err:
        return f"{parent.path} is not writable ({err.strerror})"
    try:
        limit = "memory.max" if parent.version == 2 else "memory.limit_in_bytes"
        if not (probe / limit).exists():
            if parent.version == 2:
                (parent.path / "cgroup.subtree_control").write_text("+memory")
            if not (probe / limit).exists():
                return f"{parent.path}: no {limit} in a child group"
    except OSError as err:
        return f"{parent.path}: cannot enable the memory controller ({err.strerror})"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
    return parent


def available() -> str | None:
    """None if runs get a memory cgroup here, else the reason they do not."""
    parent = _parent()
    return parent if isinstance(parent, str) else None


def where() -> str:
    parent = _parent()
    return parent if isinstance(parent, str) else f"cgroup v{parent.version} under {parent.path}"


class Group:
    """One run's memory cgroup."""

    def __init__(self, path: Path, version: int) -> None:
        self.path, self.version = path, version
        self._procs = os.fsencode(path / "cgroup.procs")

    def join(self) -> None:
        """Move the calling process in. Runs in the child before it executes: no allocation-heavy work."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def out_of_memory(self) -> bool:
        """True if the kernel killed a process of the run for going over the limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in _read(self.path / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def pids(self) -> list[int]:
        return [int(pid) for pid in _read(self.path / "cgroup.procs").split() if pid.isdigit()]

    def kill(self) -> None:
        """SIGKILL every process in the group."""
        if self.version == 2 and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
            return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and remove the group (retrying while the killed processes exit)."""
        deadline = time.monotonic() + _REMOVE_SECONDS
        while True:
            self.kill()
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as err:
                if time.monotonic() > deadline:
                    log.warning("cgroup-not-removed", path=str(self.path), error=err.strerror)
                    return
                time.sleep(0.02)


def create(memory_mb: int) -> Group | None:
    """A new group limited to `memory_mb` (swap included where v1 accounts it), or None if unavailable."""
    parent = _parent()
    if isinstance(parent, str):
        return None
    _sweep(parent.path)
    path = parent.path / f"alphalab-run-{secrets.token_hex(6)}"
    path.mkdir()
    group = Group(path, parent.version)
    limit = str(memory_mb * 1024 * 1024)
    try:
        if parent.version == 2:
            (path / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        else:
            (path / "memory.limit_in_bytes").write_text(limit)
            if (path / "memory.memsw.limit_in_bytes").exists():
                with contextlib.suppress(OSError):
                    (path / "memory.memsw.limit_in_bytes").write_text(limit)
    except OSError:
        group.remove()
        raise
    return group


@functools.cache
def _sweep(parent: Path) -> None:
    """Once per process: remove the empty groups of runs whose process died before it removed them
    (a worker killed mid-run; bwrap's --die-with-parent took the run with it). Only old ones: a young
    one may be another process's run about to start."""
    now = time.time()
    for group in parent.glob("alphalab-run-*"):
        with contextlib.suppress(OSError):
            if now - group.stat().st_mtime > _STALE_SECONDS and not _read(group / "cgroup.procs").strip():
                group.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
