"""One shell command of an agent, run in the sandbox with its workspace writable.

`shared.sandbox.started` rather than `run_async`: the model needs the head of a long output as well
as its tail (the first error of a build, say), and stdout and stderr interleaved as they were written,
so the output goes to one file of ours and is cut from the middle here. A command that floods its
output is stopped: what it printed past a few MB would be cut anyway.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.sandbox import Access, Limits, describe, started
from shared.sandbox.limits import MIB

__all__ = ["Shell", "run_shell"]

_FLOOD_BYTES = 64 * MIB
_FIRST_POLL, _LAST_POLL = 0.002, 0.05  # seconds: a quick command is answered quickly, a slow one cheaply


@dataclass(frozen=True)
class Shell:
    """How a command ended: its output (cut to `chars` from the middle) and a one-line status."""

    output: str
    status: str
    failed: bool


async def run_shell(
    command: str, *, workspace: Path, hidden: tuple[Path, ...], limits: Limits, chars: int
) -> Shell:
    """Run `bash -c command` in `workspace`; the whole process tree is killed at the end, at the wall
    limit, or when the caller is cancelled."""
    access = Access(workspace, writable=True, hidden=hidden)
    with tempfile.TemporaryFile() as out:
        begun = time.monotonic()
        flooded = False
        with started(
            ["bash", "-c", command],
            cwd=workspace,
            limits=limits,
            access=access,
            stdout=out,
            stderr=subprocess.STDOUT,
        ) as running:
            delay = _FIRST_POLL
            while running.process.poll() is None:
                if os.fstat(out.fileno()).st_size > _FLOOD_BYTES:
                    flooded = True
                    break
                await asyncio.sleep(delay)
                delay = min(2 * delay, _LAST_POLL)
        seconds = time.monotonic() - begun
        output = _head_and_tail(out, chars)
    returncode = running.process.returncode
    if flooded:
        return Shell(output, f"stopped after printing over {_FLOOD_BYTES // MIB} MB ({seconds:.1f} s)", True)
    failure = describe(returncode, running.violation, "", limits)
    if failure is None:
        return Shell(output, f"exit status 0 ({seconds:.1f} s)", False)
    return Shell(output, f"the command {failure} ({seconds:.1f} s)", True)


def _head_and_tail(file: IO[bytes], chars: int) -> str:
    """The file whole if it is under `chars` bytes, else its first and last halves and a marker."""
    size = os.fstat(file.fileno()).st_size
    file.seek(0)
    if size <= chars:
        return file.read().decode("utf-8", errors="replace")
    half = chars // 2
    head = file.read(half).decode("utf-8", errors="replace")
    file.seek(size - half)
    tail = file.read().decode("utf-8", errors="replace")
    return f"{head}\n[... {size - 2 * half:,} bytes of output cut ...]\n{tail}"
