"""The tools every agent gets on its workspace: a sandboxed shell and bounded, link-proof file tools.

The shell runs in the sandbox (no network, only the workspace writable, a clean environment, the
held-out data masked). The file tools run in this process and go through `files.Workspace`, which
never leaves the workspace, follows no link and refuses held-out paths.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import AliasChoices, Field

from shared.agents.files import Entry, Workspace
from shared.agents.shell import run_shell
from shared.agents.tools import OUTPUT_CHARS, Arguments, Tool, ToolError, ToolOutput
from shared.llm.port import Image
from shared.sandbox import Limits

__all__ = ["workspace_tools"]

_WRITE_BYTES = 2 * 1024 * 1024  # write_file and edit_file: source and notes, not data sets
_SCAN_BYTES = 64 * 1024 * 1024  # what one read_file or grep reads at most
_GREP_BYTES = 4 * 1024 * 1024
_IMAGE_BYTES = 5 * 1024 * 1024  # the providers' own limit per image
_LINE_CHARS = 2000
_WALK_ENTRIES = 20_000
_LISTED = 500
_MATCHES = 200
MediaType = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
_MAGIC: tuple[tuple[bytes, MediaType], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
)


class ShellArguments(Arguments):
    command: str = Field(description="a bash command, run in the workspace")
    timeout_s: float = Field(
        120,
        gt=0,
        description="seconds before it is killed",
        validation_alias=AliasChoices("timeout_s", "timeout"),
    )


class ReadArguments(Arguments):
    path: str
    offset: int = Field(1, ge=1, description="first line, from 1")
    limit: int = Field(2000, ge=1, le=2000, description="lines")


class WriteArguments(Arguments):
    path: str
    content: str


class EditArguments(Arguments):
    path: str
    old: str = Field(
        description="the exact text to replace", validation_alias=AliasChoices("old", "old_string")
    )
    new: str = Field(validation_alias=AliasChoices("new", "new_string"))
    replace_all: bool = False


class ListArguments(Arguments):
    path: str = "."
    pattern: str | None = Field(None, description="a glob on the path or name, e.g. *.py")


class GrepArguments(Arguments):
    pattern: str = Field(description="a Python regular expression")
    path: str = "."
    glob: str | None = Field(None, description="only files whose path or name matches, e.g. *.py")


class ImageArguments(Arguments):
    path: str


def workspace_tools(
    workspace: Path,
    *,
    hidden: tuple[Path, ...] = (),
    shell_limits: Limits | None = None,
    max_shell_seconds: float = 600,
) -> list[Tool[Any]]:
    """shell_exec, read_file, write_file, edit_file, list_files, grep and view_image on `workspace`.

    `shell_limits` bounds each command (its wall clock is the lesser of the command's `timeout_s` and
    `max_shell_seconds`); `hidden` is the held-out data, masked in the shell and refused by the rest.
    """
    files = Workspace(workspace, hidden)
    limits = shell_limits or Limits(wall_seconds=max_shell_seconds, file_mb=1024, processes=512)

    async def shell_exec(args: ShellArguments) -> ToolOutput:
        wall = min(args.timeout_s, max_shell_seconds)
        ran = await run_shell(
            args.command,
            workspace=files.root,
            hidden=hidden,
            limits=dataclasses.replace(limits, wall_seconds=wall),
            chars=OUTPUT_CHARS - 200,
        )
        return ToolOutput(f"{ran.output}\n[{ran.status}]", is_error=ran.failed)

    async def read_file(args: ReadArguments) -> ToolOutput:
        file, size = files.open_read(args.path)
        with file:
            return ToolOutput(_numbered(args.path, file, size, args.offset, args.limit))

    async def write_file(args: WriteArguments) -> ToolOutput:
        data = args.content.encode()
        _check_size(args.path, len(data))
        files.write(args.path, data)
        return ToolOutput(f"wrote {len(data):,} bytes to {args.path}")

    async def edit_file(args: EditArguments) -> ToolOutput:
        text = _text(files, args.path)
        count = text.count(args.old) if args.old else 0
        if not args.old or count == 0:
            raise ToolError(f"{args.path}: the text to replace was not found (it must match exactly)")
        if count > 1 and not args.replace_all:
            raise ToolError(
                f"{args.path}: the text to replace occurs {count} times; give more of the surrounding "
                "text to make it unique, or set replace_all"
            )
        edited = text.replace(args.old, args.new)
        _check_size(args.path, len(edited.encode()))
        files.write(args.path, edited.encode())
        return ToolOutput(f"replaced {count} occurrence{'s' if count > 1 else ''} in {args.path}")

    async def list_files(args: ListArguments) -> ToolOutput:
        return ToolOutput(await asyncio.to_thread(_listing, files, args.path, args.pattern))

    async def grep(args: GrepArguments) -> ToolOutput:
        try:
            regex = re.compile(args.pattern)
        except re.error as err:
            raise ToolError(f"{args.pattern!r} is not a valid regular expression: {err}") from None
        return ToolOutput(await asyncio.to_thread(_grep, files, regex, args.path, args.glob))

    async def view_image(args: ImageArguments) -> ToolOutput:
        file, size = files.open_read(args.path)
        with file:
            if size > _IMAGE_BYTES:
                raise ToolError(f"{args.path}: {size:,} bytes; images over {_IMAGE_BYTES:,} are not sent")
            data = file.read(_IMAGE_BYTES)
        media = _media_type(data)
        if media is None:
            raise ToolError(f"{args.path}: not a PNG, JPEG, GIF or WebP image")
        return ToolOutput(f"{args.path}: {media}, {len(data):,} bytes", images=(Image(media, data),))

    return [
        Tool(
            "shell_exec",
            "Run a bash command in the workspace, sandboxed (no network; only the workspace is writable). "
            "Returns stdout and stderr together, cut from the middle when long, and the exit status.",
            ShellArguments,
            shell_exec,
        ),
        Tool("read_file", "Read a text file of the workspace, with line numbers.", ReadArguments, read_file),
        Tool(
            "write_file",
            "Write a file of the workspace (folders are made), replacing it.",
            WriteArguments,
            write_file,
        ),
        Tool(
            "edit_file",
            "Replace an exact piece of text in a file; it must occur once unless replace_all.",
            EditArguments,
            edit_file,
        ),
        Tool("list_files", "List the files under a folder of the workspace.", ListArguments, list_files),
        Tool("grep", "Search the workspace's text files for a regular expression.", GrepArguments, grep),
        Tool("view_image", "Look at a PNG, JPEG, GIF or WebP image.", ImageArguments, view_image),
    ]


def _numbered(path: str, file: BinaryIO, size: int, offset: int, limit: int) -> str:
    """Lines `offset`.. of a text file, numbered, within the output's character budget."""
    if b"\0" in file.read(8192):
        raise ToolError(f"{path}: a binary file ({size:,} bytes); look at it with shell_exec")
    file.seek(0)
    shown: list[str] = []
    chars, number = 0, 0
    for number, line in enumerate(_lines(file), start=1):
        if number < offset:
            continue
        if len(shown) == limit or chars + len(line) > OUTPUT_CHARS - 500:
            shown.append(f"[more lines follow; read on with offset={number}]")
            break
        shown.append(f"{number:>6}\t{line}")
        chars += len(shown[-1]) + 1
    if not shown:
        return (
            f"{path}: empty" if number == 0 else f"{path}: {number} line(s); offset {offset} is past the end"
        )
    return "\n".join(shown)


def _lines(file: BinaryIO) -> Iterator[str]:
    """Decoded lines without their newline, each cut at `_LINE_CHARS`; reading stops at `_SCAN_BYTES`."""
    scanned = 0
    while scanned < _SCAN_BYTES:
        raw = file.readline(4 * _LINE_CHARS)
        if not raw:
            return
        scanned += len(raw)
        long = not raw.endswith(b"\n")
        while long:  # the rest of an overlong line: skipped, but still one line
            rest = file.readline(1024 * 1024)
            scanned += len(rest)
            long = bool(rest) and not rest.endswith(b"\n") and scanned < _SCAN_BYTES
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        yield line if len(line) <= _LINE_CHARS else f"{line[:_LINE_CHARS]} [... line cut]"


def _text(files: Workspace, path: str) -> str:
    file, size = files.open_read(path)
    with file:
        _check_size(path, size)
        data = file.read(_WRITE_BYTES + 1)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ToolError(f"{path}: not UTF-8 text; edit it with shell_exec") from None


def _check_size(path: str, size: int) -> None:
    if size > _WRITE_BYTES:
        raise ToolError(f"{path}: {size:,} bytes, over the file tools' {_WRITE_BYTES:,}; use shell_exec")


def _listing(files: Workspace, path: str, pattern: str | None) -> str:
    entries, complete = files.walk(path, limit=_WALK_ENTRIES)
    chosen = [entry for entry in entries if pattern is None or _matches(entry.path, pattern)]
    lines = [_described(entry) for entry in chosen[:_LISTED]]
    if len(chosen) > _LISTED:
        lines.append(f"[{len(chosen) - _LISTED:,} more; narrow it with path or pattern]")
    if not complete:
        lines.append(f"[stopped after {_WALK_ENTRIES:,} entries]")
    return "\n".join(lines) or f"{path}: nothing{' matches ' + pattern if pattern else ''}"


def _described(entry: Entry) -> str:
    mode = entry.stat.st_mode
    if stat.S_ISDIR(mode):
        return f"{entry.path}/"
    if stat.S_ISLNK(mode):
        return f"{entry.path}@ (symbolic link)"
    if not stat.S_ISREG(mode):
        return f"{entry.path} (not a regular file)"
    return f"{entry.path}  {entry.stat.st_size:,} bytes"


def _grep(files: Workspace, regex: re.Pattern[str], path: str, glob: str | None) -> str:
    folder = files.is_folder(path)
    if folder:
        entries, complete = files.walk(path, limit=_WALK_ENTRIES)
        names = [e.path for e in entries if stat.S_ISREG(e.stat.st_mode) and e.stat.st_size <= _GREP_BYTES]
    else:
        names, complete = [path], True
    found: list[str] = []
    scanned = 0
    for name in names:
        if glob is not None and not _matches(name, glob):
            continue
        if scanned > _SCAN_BYTES or len(found) > _MATCHES:
            complete = False
            break
        data = _searchable(files, name, alone=not folder)
        scanned += len(data)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if regex.search(line):
                found.append(f"{name}:{number}: {line[:300]}")
    lines = found[:_MATCHES]
    if len(found) > _MATCHES or not complete:
        lines.append("[more matches may exist; narrow it with path or glob]")
    return "\n".join(lines) or f"no match for {regex.pattern!r}"


def _searchable(files: Workspace, path: str, *, alone: bool) -> bytes:
    """A file's bytes for grep; nothing for a binary file, or for one of many that cannot be read."""
    try:
        file, _ = files.open_read(path)
    except ToolError:
        if alone:
            raise
        return b""  # a link or a file that vanished meanwhile: the rest of the search goes on
    with file:
        data = file.read(_GREP_BYTES)
    return b"" if b"\0" in data[:8192] else data


def _matches(path: str, pattern: str) -> bool:
    return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)


def _media_type(data: bytes) -> MediaType | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((media for magic, media in _MAGIC if data.startswith(magic)), None)
