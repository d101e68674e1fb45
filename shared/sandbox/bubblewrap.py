"""The bubblewrap command line that confines one process (https://github.com/containers/bubblewrap).

The process gets new user, pid, network, IPC, UTS and cgroup namespaces (no further user namespaces:
`--disable-userns`), the seccomp filter of `seccomp`, an empty root with read-only binds of the system
and Python folders, its workspace (read-write or read-only) at /workspace, a size- and inode-limited
private /tmp (also its /dev/shm), and masks over held-out data. Nothing else of the host's files exists
for it: not the ledger, not the adapter's harness, not other runs' workspaces. As root, the child
stages the tree (`stage`), drops to the run's own uid and executes bwrap unprivileged, so the run's
user namespace belongs to that uid, the kernel's process limit applies, and no host path is named
inside; as a user, bwrap maps that user into a new user namespace and host paths are bound as they are.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.sandbox import devices, stage
from shared.sandbox.access import SYSTEM_PATHS, Access, python_roots
from shared.sandbox.limits import MIB

__all__ = ["BWRAP", "Command", "command"]

BWRAP = "bwrap"
_NAMESPACES = (
    "--unshare-user",
    "--disable-userns",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
)


@dataclass(frozen=True)
class Command:
    """bwrap's command line, what the child runs before executing it, and how paths read inside."""

    argv: list[str]
    preexec: Callable[[], None] | None
    translate: Callable[[str], str]


def command(
    argv: Sequence[str],
    *,
    cwd: Path,
    access: Access,
    uid: int | None,
    tmp_mb: int,
    tmp_inodes: int,
    seccomp_fd: int,
) -> Command:
    """`argv` wrapped in bwrap. `uid`: the run's own user (we are root): the tree is staged first
    (see `stage`) and only neutral paths appear inside; without it, host paths are bound as they are."""
    bwrap = shutil.which(BWRAP) or BWRAP
    args = [bwrap, *_NAMESPACES, "--die-with-parent", "--new-session", "--seccomp", str(seccomp_fd)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    workspace = access.workspace.resolve()
    if uid is not None:
        plan = stage.layout()
        preexec: Callable[[], None] | None = stage.prepare(workspace, uid, tmp_mb, tmp_inodes)

        def translate(text: str) -> str:
            return plan.inside(text, workspace)

        scratch = f"{stage.STAGE}/.scratch"
        args += ["--bind", scratch, "/tmp", "--bind", scratch, "/dev/shm"]
        args += _system_binds()
        if plan.overlaid:
            args += ["--ro-bind", f"{stage.STAGE}/.python", stage.PYTHON]
        if plan.sites:
            args += ["--ro-bind", f"{stage.STAGE}/.venv", stage.VENV]
        args += _devices()
        args += ["--bind" if access.writable else "--ro-bind", f"{stage.STAGE}/.workspace", stage.WORKSPACE]
        for masked in plan.masked():
            args += ["--ro-bind", os.devnull, masked]
    else:
        preexec = None

        def translate(text: str) -> str:
            return text

        # /tmp first: the binds below may lie inside it (a venv or a workspace under /tmp).
        args += ["--size", str(tmp_mb * MIB), "--tmpfs", "/tmp"]
        args += _system_binds()
        for root in python_roots():
            args += [*_traversable_parents(root), "--ro-bind", str(root), str(root)]
        args += _devices()
        args += [*_traversable_parents(workspace), "--bind" if access.writable else "--ro-bind"]
        args += [str(workspace), str(workspace)]
    for hidden in access.hidden:
        inside = translate(str(hidden))
        if hidden.is_dir():
            args += ["--tmpfs", inside, "--remount-ro", inside]
        elif hidden.exists():
            args += ["--ro-bind", os.devnull, inside]
    args += ["--remount-ro", "/", "--chdir", translate(str(cwd.resolve())), "--"]
    return Command(args + [translate(arg) for arg in argv], preexec, translate)


def _system_binds() -> list[str]:
    return [arg for path in SYSTEM_PATHS for arg in ("--ro-bind-try", path, path)]


def _devices() -> list[str]:
    """GPUs, where there are any and the run was not granted none (`devices`: a worker's CPU run):
    each /dev/nvidia* node bound as it is (see the README)."""
    return [arg for device in devices.nodes() for arg in ("--dev-bind", device, device)]


def _traversable_parents(path: Path) -> list[str]:
    """bwrap copies a parent's mode when it creates it (/root is 0700): make the way in 0755.

    Parents inside the system folders already exist (read-only) and are left alone.
    """
    system = [Path(p) for p in SYSTEM_PATHS]
    parents = [p for p in reversed(path.parents[:-1]) if not any(p.is_relative_to(s) for s in system)]
    return [arg for parent in parents for arg in ("--perms", "0755", "--dir", str(parent))]
