"""Reaching files of a workspace from the trusted process without ever leaving it.

The candidate shapes its workspace (through shell commands it runs in the sandbox), but the file
tools run here, unsandboxed. So a path is taken apart into names, `..` is refused, and every name is
opened relative to its parent's descriptor with O_NOFOLLOW: a symbolic link anywhere on the way is
refused rather than followed, even one swapped in between a check and a use. A regular file must be
one of its own (a single hard link): a hard link is as good as a symbolic one for reaching a file
outside. Held-out data is refused by path and by identity (device and inode), which also catches it
bound or linked into the workspace.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from shared.agents.tools import ToolError
from shared.sandbox.stage import WORKSPACE

__all__ = ["Entry", "Workspace"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the candidate planted must fail or return at once, never hang the agent.
_FILE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_HELD_OUT = "held-out data, not readable by the agent"
_SKIPPED = frozenset({".git", "__pycache__", ".venv", "node_modules"})  # walked past, named only


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the workspace, with `/`
    stat: os.stat_result  # lstat: a link is itself


class Workspace:
    """A folder the file tools may read and write, and the held-out paths they must not reach."""

    def __init__(self, root: Path, hidden: tuple[Path, ...] = ()) -> None:
        self.root = root.resolve()
        self._hidden = tuple(path.resolve() for path in hidden)

    def names(self, path: str) -> tuple[str, ...]:
        """`path` (relative, or absolute inside the workspace) as names from the workspace down."""
        if "\x00" in path:
            raise ToolError(f"{path!r}: a path may not contain NUL")
        pure = PurePosixPath(path)
        if pure.is_absolute():
            pure = self._inside(pure)
        names = tuple(name for name in pure.parts if name != ".")
        if ".." in names:
            raise ToolError(f"{path}: '..' is not allowed; give a path inside the workspace")
        if any((self.root.joinpath(*names)).is_relative_to(hidden) for hidden in self._hidden):
            raise ToolError(f"{path}: {_HELD_OUT}")
        return names

    def open_read(self, path: str) -> tuple[BinaryIO, int]:
        """The file at `path`, open for reading, and its size."""
        fd = self._open_file(path, os.O_RDONLY, create=False)
        return os.fdopen(fd, "rb"), os.fstat(fd).st_size

    def write(self, path: str, data: bytes) -> None:
        """Write `data` to `path`, making missing folders."""
        fd = self._open_file(path, os.O_WRONLY | os.O_CREAT, create=True)
        with os.fdopen(fd, "wb") as file:
            file.truncate(0)  # only now: the checks in _open_file came first
            file.write(data)

    def is_folder(self, path: str) -> bool:
        try:
            os.close(self._open_dir(self.names(path)))
        except ToolError:
            return False
        return True

    def walk(self, path: str, *, limit: int) -> tuple[list[Entry], bool]:
        """Entries under the folder `path` in tree order (a folder, then what it holds), up to `limit`;
        and whether that was all of them. Links are listed, never entered; held-out entries are left out."""
        start = self.names(path)
        held_out = self._identities()
        found: list[Entry] = []
        pending = [start]
        while pending:
            names = pending.pop()
            try:
                fd = self._open_dir(names)
            except ToolError:
                if names == start:
                    raise
                continue  # changed under us since it was listed
            try:
                listed = sorted(os.scandir(fd), key=lambda entry: entry.name)
                inner: list[tuple[str, ...]] = []
                for entry in listed:
                    info = entry.stat(follow_symlinks=False)
                    if (info.st_dev, info.st_ino) in held_out:
                        continue
                    if len(found) == limit:
                        return sorted(found, key=_in_tree_order), False
                    found.append(Entry("/".join((*names, entry.name)), info))
                    if stat.S_ISDIR(info.st_mode) and entry.name not in _SKIPPED:
                        inner.append((*names, entry.name))
                pending.extend(reversed(inner))
            finally:
                os.close(fd)
        return sorted(found, key=_in_tree_order), True

    def _inside(self, pure: PurePosixPath) -> PurePosixPath:
        """An absolute path as one relative to the workspace: its host path, or the path the sandbox
        shows it at (what `pwd` prints in a shell command)."""
        for base in (PurePosixPath(self.root), PurePosixPath(WORKSPACE)):
            if pure.is_relative_to(base):
                return pure.relative_to(base)
        raise ToolError(f"{pure}: outside the workspace; give a path relative to it")

    def _open_dir(self, names: tuple[str, ...], *, create: bool = False) -> int:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for depth, name in enumerate(names):
                if create:
                    _make_dir(name, fd)
                try:
                    inner = os.open(name, _DIR, dir_fd=fd)
                except OSError as err:
                    raise _refusal("/".join(names[: depth + 1]), name, fd, err) from None
                os.close(fd)
                fd = inner
                if self._held_out(os.fstat(fd)):
                    raise ToolError(f"{'/'.join(names[: depth + 1])}: {_HELD_OUT}")
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _open_file(self, path: str, flags: int, *, create: bool) -> int:
        names = self.names(path)
        if not names:
            raise ToolError(f"{path}: that is the workspace folder, not a file")
        parent = self._open_dir(names[:-1], create=create)
        try:
            fd = os.open(names[-1], flags | _FILE, 0o644, dir_fd=parent)
        except OSError as err:
            raise _refusal(path, names[-1], parent, err) from None
        finally:
            os.close(parent)
        try:
            self._check_file(path, os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        os.set_blocking(fd, True)
        return fd

    def _check_file(self, path: str, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path}: not a regular file")
        if self._held_out(info):
            raise ToolError(f"{path}: {_HELD_OUT}")
        if info.st_nlink > 1:
            raise ToolError(f"{path}: {info.st_nlink} hard links; the file tools only touch files with one")

    def _held_out(self, info: os.stat_result) -> bool:
        return (info.st_dev, info.st_ino) in self._identities()

    def _identities(self) -> set[tuple[int, int]]:
        """The held-out paths' devices and inodes, as they are now (data may be prepared later)."""
        return {(held.st_dev, held.st_ino) for held in _stats(self._hidden)}


def _in_tree_order(entry: Entry) -> list[str]:
    return entry.path.split("/")


def _stats(paths: tuple[Path, ...]) -> Iterator[os.stat_result]:
    for path in paths:
        try:
            yield path.stat()
        except OSError:
            continue


def _make_dir(name: str, parent: int) -> None:
    with contextlib.suppress(FileExistsError):  # a folder, or something the open after it refuses
        os.mkdir(name, 0o755, dir_fd=parent)


def _refusal(shown: str, name: str, parent: int, err: OSError) -> ToolError:
    """Why `name` (in the folder `parent`) could not be opened, in words the model can act on."""
    try:
        kind = os.lstat(name, dir_fd=parent).st_mode
    except OSError:
        kind = None
    if kind is not None and stat.S_ISLNK(kind):
        return ToolError(f"{shown}: a symbolic link is on the path; links are not followed")
    if err.errno == errno.ENOENT:
        return ToolError(f"{shown}: no such file or folder")
    if err.errno == errno.ENOTDIR:
        return ToolError(f"{shown}: not a folder")
    if err.errno == errno.EISDIR:
        return ToolError(f"{shown}: a folder, not a file")
    return ToolError(f"{shown}: {err.strerror}")
