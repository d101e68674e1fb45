"""Walking and deleting a tree a candidate made, safely: iteratively and by file descriptor.

A candidate controls its tree's shape: a folder 100,000 deep overflows any recursive walk (and the
path of its deepest file is far longer than PATH_MAX), and a link swapped in mid-walk could lead a
path-based walk out of the tree. So every walk here keeps an explicit stack of open folder
descriptors, opens each child relative to its parent's descriptor with O_NOFOLLOW, and never builds
a path. Links are never followed; they are reported (or deleted) as themselves.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "Usage", "chown", "remove", "scratch", "usage", "walk"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Entry:
    """One entry: its parent's descriptor (valid only while the walk is at it), name, lstat, depth."""

    dir_fd: int
    name: str
    stat: os.stat_result
    depth: int
    parts: tuple[str, ...]  # the names from the root down, this one last (only if asked for)


@dataclass(frozen=True)
class Usage:
    bytes: int
    inodes: int


def walk(root: Path | str, *, max_depth: int | None = None, named: bool = False) -> Iterator[Entry]:
    """Every entry under `root` (not `root` itself), a folder before what it holds; folders at
    `max_depth` are not entered. Entries that vanish meanwhile are skipped. `named`: fill in `parts`.

    Two descriptors at most are open: the walk climbs back up through `..`, checking that it arrives
    where it came from (a folder moved meanwhile ends the walk rather than leave the tree).
    """
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return
    try:
        levels = [_Level(_identity(fd), _names(fd), ())]
        while levels:
            level = levels[-1]
            if not level.names:
                levels.pop()
                if levels:
                    up = os.open("..", _DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = up
                    if _identity(fd) != levels[-1].identity:
                        return
                continue
            name = level.names.pop()
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            depth = len(levels)
            parts = (*level.parts, name) if named else ()
            yield Entry(fd, name, info, depth, parts)
            if stat.S_ISDIR(info.st_mode) and (max_depth is None or depth < max_depth):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                os.close(fd)
                fd = child
                levels.append(_Level(_identity(fd), _names(fd), parts))
    finally:
        os.close(fd)


@dataclass
class _Level:
    identity: tuple[int, int]
    names: list[str]
    parts: tuple[str, ...]


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _names(fd: int) -> list[str]:
    try:
        with os.scandir(fd) as entries:
            return sorted((entry.name for entry in entries), reverse=True)
    except OSError:
        return []


def usage(root: Path | str) -> Usage:
    """Bytes allocated and inodes used under `root` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = inodes = 0
    for entry in walk(root):
        key = (entry.stat.st_dev, entry.stat.st_ino)
        if key not in seen:
            seen.add(key)
            total += entry.stat.st_blocks * 512
            inodes += 1
    return Usage(total, inodes)


def chown(root: Path | str, uid: int) -> None:
    """Make `uid` the owner of `root` and of everything under it, links themselves included."""
    os.chown(root, uid, uid, follow_symlinks=False)
    _each(root, lambda e: os.chown(e.name, uid, uid, dir_fd=e.dir_fd, follow_symlinks=False))


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder that candidate code may fill, removed by `remove` whatever it then holds
    (`tempfile.TemporaryDirectory` deletes recursively: a deep tree would crash it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        remove(path)


def remove(root: Path | str) -> None:
    """Delete `root` and everything under it, however deep; a missing `root` is not an error.

    Down into the first subfolder until one holds none, unlinking files on the way, then up through
    `..` removing the emptied folder: two descriptors open at a time and a stack of names only.
    """
    root = Path(root)
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        root.unlink()
        return
    fd = os.open(root.parent, _DIR_FLAGS)
    try:
        names = [root.name]
        identities = [_identity(fd)]
        child = os.open(root.name, _DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = child
        while names:
            folder = _empty_until_folder(fd)
            if folder is not None:
                child = os.open(folder, _DIR_FLAGS, dir_fd=fd)
                identities.append(_identity(fd))
                names.append(folder)
                os.close(fd)
                fd = child
                continue
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            if _identity(fd) != identities.pop():
                raise OSError(f"{root}: a folder moved while it was being deleted")
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)


def _empty_until_folder(fd: int) -> str | None:
    """Unlink the non-folders in `fd`; the name of the first subfolder met, or None once it is empty."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
    return None


def _each(root: Path | str, action: Callable[[Entry], None]) -> None:
    for entry in walk(root):
        with contextlib.suppress(FileNotFoundError):
            action(entry)
