"""The fallback without bubblewrap: new mount, network, IPC and UTS namespaces entered by the child.

Only root may create them without a user namespace, so this runs as root and, where the interpreter is
reachable by any user, drops to the run's own uid afterwards. It cuts the network, masks held-out data
and gives the run a private /tmp, but it does not hide the rest of the host's files the way bubblewrap
does: `isolation()` reports that as missing.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Callable
from pathlib import Path

from shared.sandbox.access import Access, python_roots

__all__ = ["drop_to", "enter", "reachable_by_anyone"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_PR_SET_NO_NEW_PRIVS = 38
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")

_libc = ctypes.CDLL(None, use_errno=True)


def enter(access: Access, tmp_mb: int) -> Callable[[], None]:
    """The function a child runs before exec to enter its namespaces; paths are resolved here, once."""
    workspace = access.workspace.resolve()
    hidden = [(str(p), p.is_dir()) for p in access.hidden if p.exists()]
    # A private /tmp over the workspace or the interpreter would hide them: then /tmp stays shared.
    needed = [workspace, *python_roots()]
    scratch = [s for s in _SCRATCH if os.path.isdir(s) and not any(p.is_relative_to(s) for p in needed)]

    def apply() -> None:
        _check(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        for folder in scratch:
            _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={tmp_mb}m,mode=1777")
        for path, is_dir in hidden:
            if is_dir:
                _mount("tmpfs", path, "tmpfs", _MS_RDONLY, "size=4k,mode=000")
            else:
                _mount(os.devnull, path, None, _MS_BIND)
        if not access.writable:
            _mount(str(workspace), str(workspace), None, _MS_BIND)
            _mount(None, str(workspace), None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)

    return apply


def reachable_by_anyone(path: Path) -> bool:
    """True if a user with no rights of its own can reach and execute `path` (every parent o+x)."""
    resolved = path.resolve()
    for folder in resolved.parents:
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(resolved).st_mode & stat.S_IXOTH)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encoded = [None if x is None else x.encode() for x in (source, target, fstype, data)]
    _check(_libc.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3]), f"mount {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def drop_to(uid: int) -> None:
    """Become `uid` with no groups and no way back up (no setuid binaries). Runs in the child."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
