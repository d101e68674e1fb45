"""The workspace tools: a sandboxed shell, and file tools that never leave the workspace."""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from shared.agents import Tool, ToolOutput, workspace_tools
from shared.agents.tools import execute
from shared.llm.port import ToolCall
from shared.sandbox import isolation

sandboxed = pytest.mark.skipif(isolation().mode == "none", reason="no sandbox on this machine")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


async def _use(tools: list[Tool[Any]], name: str, **arguments: Any) -> ToolOutput:
    return await execute({tool.name: tool for tool in tools}, ToolCall("id", name, arguments))


async def _in(workspace: Path, name: str, **arguments: Any) -> ToolOutput:
    return await _use(workspace_tools(workspace), name, **arguments)


def _png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


async def test_read_file_numbers_lines_from_an_offset(workspace: Path) -> None:
    """read_file shows `limit` lines from `offset`, numbered, and says how to read on."""
    (workspace / "notes.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    read = await _in(workspace, "read_file", path="notes.txt", offset=3, limit=2)
    assert read.text == "     3\tline 3\n     4\tline 4\n[more lines follow; read on with offset=5]"


async def test_write_file_makes_folders_and_paths_inside_may_be_absolute(workspace: Path) -> None:
    """A file is written under new folders; its host path and its /workspace path both read it back."""
    wrote = await _in(workspace, "write_file", path="src/model/fit.py", content="x = 1\n")
    assert not wrote.is_error and (workspace / "src/model/fit.py").read_text() == "x = 1\n"
    for path in (str(workspace / "src/model/fit.py"), "/workspace/src/model/fit.py"):
        assert (await _in(workspace, "read_file", path=path)).text == "     1\tx = 1"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside.txt", "'..' is not allowed"),
        ("sub/../../outside.txt", "'..' is not allowed"),
        ("/etc/passwd", "outside the workspace"),
    ],
)
async def test_paths_that_leave_the_workspace_are_refused(workspace: Path, path: str, why: str) -> None:
    """`..` and absolute paths elsewhere are refused, for reading and for writing."""
    (workspace.parent / "outside.txt").write_text("not yours")
    for name, arguments in (("read_file", {}), ("write_file", {"content": "x"})):
        refused = await _in(workspace, name, path=path, **arguments)
        assert refused.is_error and why in refused.text
    assert (workspace.parent / "outside.txt").read_text() == "not yours"


@sandboxed
async def test_links_a_shell_command_planted_are_never_followed(workspace: Path) -> None:
    """Links to /etc/passwd, to /etc, and to a file outside are refused by read_file and write_file."""
    outside = workspace.parent / "outside.txt"
    outside.write_text("not yours")
    tools = workspace_tools(workspace)
    planted = await _use(
        tools, "shell_exec", command=f"ln -s /etc/passwd leak && ln -s /etc etc && ln -s {outside} out"
    )
    assert not planted.is_error, planted.text
    for path in ("leak", "etc/passwd", "out"):
        read = await _use(tools, "read_file", path=path)
        assert read.is_error and "symbolic link" in read.text and "root:" not in read.text
    wrote = await _use(tools, "write_file", path="out", content="overwritten")
    assert wrote.is_error and outside.read_text() == "not yours"
    assert (await _use(tools, "edit_file", path="out", old="not", new="now")).is_error
    assert "leak@ (symbolic link)" in (await _use(tools, "list_files")).text
    assert "root:" not in (await _use(tools, "grep", pattern="root")).text


async def test_a_hard_link_to_a_file_outside_is_refused(workspace: Path) -> None:
    """A second name for an outside file is as much a way out as a symbolic link."""
    outside = workspace.parent / "outside.txt"
    outside.write_text("not yours")
    os.link(outside, workspace / "hard.txt")
    read = await _in(workspace, "read_file", path="hard.txt")
    assert read.is_error and "hard links" in read.text


@sandboxed
async def test_a_fifo_is_refused_at_once(workspace: Path) -> None:
    """A planted FIFO neither hangs read_file nor write_file."""
    tools = workspace_tools(workspace)
    await _use(tools, "shell_exec", command="mkfifo pipe")
    for name, arguments in (("read_file", {}), ("write_file", {"content": "x"})):
        refused = await _use(tools, name, path="pipe", **arguments)
        assert refused.is_error


@sandboxed
async def test_held_out_data_is_unreachable_through_every_tool(workspace: Path) -> None:
    """Held-out files are refused by the file tools, left out of listings and masked in the shell."""
    held_out = workspace / "data" / "held_out"
    held_out.mkdir(parents=True)
    (held_out / "targets.csv").write_text("the answers\n")
    tools = workspace_tools(workspace, hidden=(held_out,))
    read = await _use(tools, "read_file", path="data/held_out/targets.csv")
    assert read.is_error and "held-out" in read.text
    assert (await _use(tools, "write_file", path="data/held_out/new.csv", content="x")).is_error
    assert "held_out" not in (await _use(tools, "list_files")).text
    assert "the answers" not in (await _use(tools, "grep", pattern="answers")).text
    shell = await _use(tools, "shell_exec", command="cat data/held_out/targets.csv; ls data")
    assert "the answers" not in shell.text


@sandboxed
async def test_the_shell_cannot_write_outside_see_keys_or_reach_the_network(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shell_exec runs sandboxed: only the workspace is writable, no key in its environment, no network."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    outside = workspace.parent / "outside.txt"
    command = (
        f"echo x > {outside}; echo inside > inside.txt; env; "
        f"(echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED || echo NO-NETWORK"
    )
    try:
        ran = await _in(workspace, "shell_exec", command=command)
    finally:
        server.close()
    assert not outside.exists() and (workspace / "inside.txt").read_text() == "inside\n"
    assert "sk-ant-must-not-leak" not in ran.text and "ANTHROPIC" not in ran.text
    assert "NO-NETWORK" in ran.text and "CONNECTED" not in ran.text


@sandboxed
async def test_a_command_past_its_timeout_is_killed_with_its_children(workspace: Path) -> None:
    """The shell's wall clock is the lesser of timeout_s and the maximum; the whole tree dies at it."""
    tools = workspace_tools(workspace, max_shell_seconds=1)
    begun = time.monotonic()
    ran = await _use(tools, "shell_exec", command="sleep 31.4159 & sleep 31.4159; echo never", timeout_s=60)
    assert time.monotonic() - begun < 10
    assert ran.is_error and "exceeded 1 s of wall-clock time and was killed" in ran.text
    assert "never" not in ran.text
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _runs(pid, b"31.4159")]


def _runs(pid: str, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@sandboxed
async def test_long_shell_output_keeps_its_head_and_tail_and_the_exit_status(workspace: Path) -> None:
    """stdout and stderr come back together, cut from the middle, with the exit status."""
    command = "echo FIRST; echo oops >&2; seq 1 100000; echo LAST; exit 3"
    ran = await _in(workspace, "shell_exec", command=command)
    assert ran.text.startswith("FIRST\noops\n") and "LAST\n" in ran.text
    assert "bytes of output cut" in ran.text and len(ran.text) <= 30_000
    assert ran.is_error and "[the command exited with code 3 (" in ran.text


async def test_edit_file_replaces_exactly_once_unless_told_otherwise(workspace: Path) -> None:
    """Absent text and ambiguous text are refused with the count; replace_all replaces every one."""
    (workspace / "fit.py").write_text("lr = 0.1\nmomentum = 0.1\n")
    missing = await _in(workspace, "edit_file", path="fit.py", old="lr = 0.2", new="lr = 0.3")
    assert missing.is_error and "not found" in missing.text
    ambiguous = await _in(workspace, "edit_file", path="fit.py", old="0.1", new="0.2")
    assert ambiguous.is_error and "occurs 2 times" in ambiguous.text
    assert (workspace / "fit.py").read_text() == "lr = 0.1\nmomentum = 0.1\n"
    every = await _in(workspace, "edit_file", path="fit.py", old="0.1", new="0.5", replace_all=True)
    assert every.text == "replaced 2 occurrences in fit.py"
    once = await _in(workspace, "edit_file", path="fit.py", old="lr = 0.5", new="lr = 0.01")
    assert once.text == "replaced 1 occurrence in fit.py"
    assert (workspace / "fit.py").read_text() == "lr = 0.01\nmomentum = 0.5\n"


async def test_list_files_and_grep_find_what_is_there(workspace: Path) -> None:
    """list_files filters by glob; grep gives path, line number and line, filtered by glob."""
    (workspace / "src").mkdir()
    (workspace / "src" / "fit.py").write_text("import numpy\nlr = 0.1\n")
    (workspace / "README.md").write_text("lr is the learning rate\n")
    (workspace / "blob.bin").write_bytes(b"\x00lr = 0.1")
    assert (await _in(workspace, "list_files", pattern="*.py")).text == "src/fit.py  22 bytes"
    found = await _in(workspace, "grep", pattern=r"lr\b", glob="*.py")
    assert found.text == "src/fit.py:2: lr = 0.1"
    everywhere = await _in(workspace, "grep", pattern="lr")
    assert "README.md:1:" in everywhere.text and "blob.bin" not in everywhere.text
    assert (await _in(workspace, "grep", pattern="(")).is_error


async def test_view_image_hands_the_model_an_image(workspace: Path) -> None:
    """A PNG goes back as an Image block; a file that is not an image is refused."""
    (workspace / "plot.png").write_bytes(_png())
    (workspace / "plot.txt").write_text("not an image")
    seen = await _in(workspace, "view_image", path="plot.png")
    assert [image.media_type for image in seen.images] == ["image/png"] and seen.images[0].data == _png()
    assert (await _in(workspace, "view_image", path="plot.txt")).is_error
