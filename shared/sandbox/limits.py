"""Resource limits of one sandboxed process, applied with setrlimit in the child before it executes."""

from __future__ import annotations

import resource
from dataclasses import dataclass

__all__ = ["MIB", "Limits", "apply", "rlimits"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-run limits; None leaves that resource unlimited.

    `file_mb` bounds any one file written, `disk_mb` and `inodes` the workspace as a whole (by its
    filesystem where the grading mounted one, see `workspace`; else watched), `processes` the processes
    and threads of the run (it needs a user of its own: see `isolation`), `tmp_mb` and `tmp_inodes` its
    private /tmp. `memory_mb` bounds the resident memory of the whole run (its cgroup, see `cgroup`) and
    each process's address space: torch and BLAS reserve far more than they touch, so leave headroom.
    """

    wall_seconds: float
    cpu_seconds: float | None = None
    memory_mb: int | None = None
    file_mb: int | None = None
    processes: int | None = None
    disk_mb: int | None = None
    inodes: int | None = None
    tmp_mb: int = 64
    tmp_inodes: int = 8192

    def named(self, resource_name: str) -> str:
        """The limit on `resource_name` (wall, cpu, memory, file, disk, processes) as a phrase."""
        value, unit = {
            "wall": (self.wall_seconds, "s of wall-clock time"),
            "cpu": (self.cpu_seconds, "s of CPU time"),
            "memory": (self.memory_mb, "MB of memory"),
            "file": (self.file_mb, "MB per file"),
            "disk": (self.disk_mb, "MB of workspace"),
            "inodes": (self.inodes, "files and folders in the workspace"),
            "processes": (self.processes, "processes"),
        }[resource_name]
        return f"{value:g} {unit}" if value is not None else f"no limit on {unit.split(' of ')[-1]}"


def rlimits(limits: Limits, *, processes_already: int = 0) -> dict[int, int]:
    """The kernel limits to set; `processes_already` is added to the process limit when the run shares a
    user with other processes (the kernel counts every process of the user)."""
    wanted = {resource.RLIMIT_CORE: 0}
    if limits.cpu_seconds is not None:
        wanted[resource.RLIMIT_CPU] = max(1, int(limits.cpu_seconds + 0.999))
    if limits.memory_mb is not None:
        wanted[resource.RLIMIT_AS] = limits.memory_mb * MIB
    if limits.file_mb is not None:
        wanted[resource.RLIMIT_FSIZE] = limits.file_mb * MIB
    if limits.processes is not None:
        wanted[resource.RLIMIT_NPROC] = limits.processes + processes_already
    return wanted


def apply(wanted: dict[int, int]) -> None:
    """Set each limit, never above the hard limit we were given. Runs in the child, before exec."""
    for kind, value in wanted.items():
        _, hard = resource.getrlimit(kind)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (capped, capped))
