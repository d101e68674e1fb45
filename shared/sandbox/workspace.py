"""A workspace whose size and number of files the filesystem itself bounds, and the watch over it.

A walk that adds up file sizes misses what a candidate can hide from it: a file unlinked while still
open, hard links, sparse files, paths too long to name, a tree too deep to descend. So, as root, the
workspace of a grading is a tmpfs of its own, mounted for the grading's duration with `size=` and
`nr_inodes=`: every byte and inode of it counts, however it was made, and writing past the limit
fails with ENOSPC. (Its pages are also charged to the writing run's memory cgroup.) A keeper process
unmounts it if we die before we do, so no mount outlives its grading on the host. Where we cannot
mount (not root) the workspace is a plain folder and `Gauge` falls back to a walk, reported by
`alphalab doctor` as the weaker guarantee it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import structlog

from shared.sandbox import tree
from shared.sandbox.limits import MIB, Limits

__all__ = ["Gauge", "limited", "mountable", "release"]

log = structlog.get_logger(__name__)
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 0x2, 0x4
_FULL_BYTES = 256 * 1024  # a limited workspace with less free than this is full
_libc = ctypes.CDLL(None, use_errno=True)


def mountable() -> str | None:
    """None if gradings get a limited filesystem here, else why not."""
    if os.geteuid() == 0:
        return None
    return "mounting a tmpfs needs root: the workspace's size is watched by a walk"


@contextlib.contextmanager
def limited(path: Path, disk_mb: int, inodes: int) -> Iterator[bool]:
    """Mount a tmpfs of `disk_mb` and `inodes` at `path` (an empty folder) while the block runs;
    yields whether it did. Unmounted (lazily, so nothing open keeps it) on leaving."""
    if mountable() is not None:
        log.info("workspace-not-limited", path=str(path), reason=mountable())
        yield False
        return
    options = f"size={disk_mb}m,nr_inodes={inodes},mode=0755".encode()
    result = _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)
    if result != 0:
        error = os.strerror(ctypes.get_errno())
        log.warning("workspace-mount-failed", path=str(path), error=error)
        yield False
        return
    keeper = _keeper(path)
    try:
        yield True
    finally:
        release(path)
        if keeper is not None:
            assert keeper.stdin is not None
            keeper.stdin.close()
            keeper.wait()


def _keeper(path: Path) -> subprocess.Popen[bytes] | None:
    """A tiny process, in a session of its own, that unmounts `path` when our end of its pipe closes:
    when we are done, or when we die (killed mid-grading), so a mount never outlives its grading."""
    umount = shutil.which("umount")
    if umount is None:
        log.warning("workspace-keeper-missing", path=str(path), reason="no umount program")
        return None
    script = 'read _ ; exec "$1" -l "$0" 2>/dev/null'
    return subprocess.Popen(
        ["/bin/sh", "-c", script, str(path), umount],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def release(path: Path) -> None:
    """Unmount a limited workspace at `path`, if one is mounted there (one left by a crash, say)."""
    while os.path.ismount(path):
        if _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
            log.warning("workspace-unmount-failed", path=str(path), error=os.strerror(ctypes.get_errno()))
            return


class Gauge:
    """Whether a run's workspace is over its limits: from the filesystem where it is a limited mount
    of its own, otherwise by walking it (by descriptor, hard links once)."""

    def __init__(self, workspace: Path, limits: Limits) -> None:
        self._workspace, self._limits = workspace, limits
        self._mounted = os.path.ismount(workspace)

    def over(self) -> str | None:
        """`disk`, `inodes`, or None."""
        if self._mounted:
            try:
                fs = os.statvfs(self._workspace)
            except OSError:
                return None
            if fs.f_bavail * fs.f_frsize < _FULL_BYTES:
                return "disk"
            if fs.f_favail <= 1:
                return "inodes"
            return None
        used = tree.usage(self._workspace)
        if self._limits.disk_mb is not None and used.bytes > self._limits.disk_mb * MIB:
            return "disk"
        if self._limits.inodes is not None and used.inodes > self._limits.inodes:
            return "inodes"
        return None
