"""Candidate code as content-addressed bundles: the files of a candidate in one canonical document.

A bundle is JSON, `{"format": 1, "files": {relative path: text}}`, keys sorted, so equal files give
equal bytes and so equal digests wherever they are packed. It goes to the blob store; run events carry
its digest and its parent's, which makes the leaderboard a genealogy and lets any worker on any host
rebuild a candidate from the digest alone (`unpack`). Candidate sources are text: a file that is not
UTF-8, too large, or too many refuses the bundle (a candidate is code, not data).
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from shared.errors import ConfigError

__all__ = ["MAX_BUNDLE_BYTES", "MAX_FILES", "BundleError", "diff", "files_of", "pack", "unpack"]

FORMAT = 1
MAX_FILES = 64
MAX_BUNDLE_BYTES = 4 * 1024 * 1024


class BundleError(ConfigError):
    """Files that cannot be a candidate bundle, or bytes that are not one."""


def pack(folder: Path, names: Iterable[str]) -> bytes:
    """The bundle of `names` (relative paths under `folder`): regular files only, never a link."""
    files: dict[str, str] = {}
    total = 0
    for name in sorted(set(names)):
        _check_name(name)
        if len(files) >= MAX_FILES:
            raise BundleError(f"the candidate has more than {MAX_FILES} files")
        data = _read_regular(folder, name, MAX_BUNDLE_BYTES - total)
        total += len(data)
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{name}: not UTF-8 text; a candidate bundle holds source files only") from None
    return _encode(files)


def files_of(bundle: bytes) -> dict[str, str]:
    """The files of a bundle, every name checked (a bundle from the store is still untrusted input)."""
    if len(bundle) > 2 * MAX_BUNDLE_BYTES:
        raise BundleError("bundle too large")
    try:
        document = json.loads(bundle)
    except (ValueError, RecursionError):
        raise BundleError("not a candidate bundle (invalid JSON)") from None
    files = document.get("files") if isinstance(document, dict) else None
    if document.get("format") != FORMAT or not isinstance(files, dict) or len(files) > MAX_FILES:
        raise BundleError("not a candidate bundle (unknown format)")
    for name, text in files.items():
        _check_name(name)
        if not isinstance(text, str):
            raise BundleError(f"{name}: not text")
    return files


def unpack(bundle: bytes, folder: Path) -> list[str]:
    """Write a bundle's files under `folder` (created); returns their names."""
    files = files_of(bundle)
    for name, text in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(files)


def diff(parent: bytes | None, child: bytes, *, context: int = 3) -> str:
    """A unified diff from `parent` (None: nothing) to `child`, file by file."""
    before = files_of(parent) if parent is not None else {}
    after = files_of(child)
    chunks = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"a/{name}" if old is not None else "/dev/null",
            tofile=f"b/{name}" if new is not None else "/dev/null",
            n=context,
        )
        # as git writes it: a last line without its newline would run into the next file's header
        chunks.extend(
            line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n" for line in lines
        )
    return "".join(chunks)


def _read_regular(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of the regular file `name` under `folder`, opened component by component without
    following any link (a candidate may have swapped a folder for a link to the host), its size
    checked before it is read."""
    parts = PurePosixPath(name).parts
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = step
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        file_fd = os.open(parts[-1], flags, dir_fd=fd)
    except OSError as err:
        raise BundleError(f"{name}: {err.strerror}; a candidate bundle holds regular files only") from None
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(f"{name}: not a regular file; a candidate bundle holds source files only")
        if info.st_size > limit:
            raise BundleError(f"the candidate's files exceed {MAX_BUNDLE_BYTES >> 20} MB")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise BundleError(f"the candidate's files exceed {MAX_BUNDLE_BYTES >> 20} MB")
    return data


def _encode(files: dict[str, str]) -> bytes:
    document = {"format": FORMAT, "files": dict(sorted(files.items()))}
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _check_name(name: object) -> None:
    pure = PurePosixPath(name) if isinstance(name, str) else None
    if pure is None or not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise BundleError(f"{name!r}: a bundle's file names are relative paths inside the candidate")
