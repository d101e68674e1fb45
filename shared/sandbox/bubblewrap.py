"""The bubblewrap command line that confines one process (https://github.com/containers/bubblewrap).

The process gets new pid, network, IPC and UTS namespaces, an empty root with read-only binds of the
system and Python folders, its workspace (read-write or read-only), a size-limited private /tmp, and
masks over held-out data. Nothing else of the host's files exists for it: not the ledger, not the
adapter's harness, not other runs' workspaces. Run as root, bwrap keeps the capabilities to change user
and `setpriv` then drops to the run's own uid, so the kernel's process limit applies and the workspace
is the only place it can write; run as a user, bwrap maps that user into a new user namespace.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from shared.sandbox.access import SYSTEM_PATHS, Access, python_roots
from shared.sandbox.limits import MIB

__all__ = ["BWRAP", "SETPRIV", "command"]

BWRAP = "bwrap"
SETPRIV = "setpriv"
_NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")


def command(argv: Sequence[str], *, cwd: Path, access: Access, uid: int | None, tmp_mb: int) -> list[str]:
    """`argv` wrapped in bwrap; `uid` is the user to become (root callers only)."""
    bwrap = shutil.which(BWRAP) or BWRAP
    args = [bwrap, *_NAMESPACES, "--die-with-parent", "--new-session"]
    args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if uid is not None else ["--unshare-user"]
    # /tmp first: the binds below may lie inside it (a venv or a workspace under /tmp).
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * MIB), "--tmpfs", "/tmp"]
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    for root in python_roots():
        args += [*_traversable_parents(root), "--ro-bind", str(root), str(root)]
    for device in sorted(glob.glob("/dev/nvidia*")):  # GPUs, where there are any
        args += ["--dev-bind", device, device]
    workspace = access.workspace.resolve()
    args += [*_traversable_parents(workspace), "--bind" if access.writable else "--ro-bind"]
    args += [str(workspace), str(workspace)]
    for hidden in access.hidden:
        if hidden.is_dir():
            args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
        elif hidden.exists():
            args += ["--ro-bind", os.devnull, str(hidden)]
    args += ["--remount-ro", "/", "--chdir", str(cwd.resolve()), "--"]
    if uid is not None:
        args += [shutil.which(SETPRIV) or SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    return args + list(argv)


def _traversable_parents(path: Path) -> list[str]:
    """bwrap copies a parent's mode when it creates it (/root is 0700): make the way in 0755.

    Parents inside the system folders already exist (read-only) and are left alone.
    """
    system = [Path(p) for p in SYSTEM_PATHS]
    parents = [p for p in reversed(path.parents[:-1]) if not any(p.is_relative_to(s) for s in system)]
    return [arg for parent in parents for arg in ("--perms", "0755", "--dir", str(parent))]
