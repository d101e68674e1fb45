"""Running untrusted candidate processes with limits, a clean environment and a kill for the whole tree.

Every child starts its own session, so it and everything it spawns share one process group that a
timeout, a cancellation or the end of a run kills at once. Resource limits are set in the child
before it executes (`setrlimit`). What this first version does not do: isolate the filesystem or the
network (a later issue adds namespaces), stop a grandchild that starts a session of its own, or bound
processes when running as root, because the kernel does not apply RLIMIT_NPROC to root (it also counts
every process of the user, not only the run's). RLIMIT_AS bounds address space, not resident memory:
torch and BLAS reserve far more than they touch, so leave them headroom.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["Limits", "Outcome", "clean_env", "kill_tree", "popen", "run", "run_async", "tail"]

TAIL_BYTES = 4096
_MIB = 1024 * 1024
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Limits:
    """Per-run limits; None leaves that resource unlimited. `file_mb` bounds any one file written."""

    wall_seconds: float
    cpu_seconds: float | None = None
    memory_mb: int | None = None
    file_mb: int | None = None
    processes: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How a run ended; the tails are the last few KB of its output, decoded leniently."""

    returncode: int | None
    timed_out: bool
    wall_seconds: float
    stdout_tail: str
    stderr_tail: str


class _HasPid(Protocol):
    pid: int


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment built from scratch, never copied from ours, so no key or token leaks in.

    Numeric libraries get one thread each: the worker runs several candidates side by side and sizes
    them by cores. `extra` is added last and wins.
    """
    env = {
        "PATH": f"{Path(sys.executable).parent}:{_SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
    }
    env.update(extra or {})
    return env


def popen(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start `argv` in `cwd` in a session of its own, limited, with a clean env whose HOME is `cwd`.

    The wall-clock limit is the caller's to enforce (see `run`); everything else is set here.
    """
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=_with_home(env, cwd),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_limiter(limits),
    )


def kill_tree(process: _HasPid) -> None:
    """SIGKILL the process group that `process` leads; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> Outcome:
    """Run to completion or to the wall-clock limit, then kill whatever of its group is left."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        process = popen(argv, cwd=cwd, limits=limits, env=env, stdin=stdin, stdout=out, stderr=err)
        timed_out = False
        try:
            process.communicate(input, timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_tree(process)
            process.wait()
        return _outcome(process.returncode, timed_out, time.monotonic() - started, out, err)


async def run_async(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    on_tick: Callable[[], Awaitable[None]] | None = None,
    tick_seconds: float = 5.0,
) -> Outcome:
    """`run` in asyncio, awaiting `on_tick` every `tick_seconds` meanwhile; cancelling kills the group."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=_with_home(env, cwd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_limiter(limits),
        )
        timed_out = False
        try:
            timed_out = not await _wait_ticking(process, limits.wall_seconds, on_tick, tick_seconds)
        finally:
            kill_tree(process)
            await asyncio.shield(process.wait())
        return _outcome(process.returncode, timed_out, time.monotonic() - started, out, err)


async def _wait_ticking(
    process: asyncio.subprocess.Process,
    wall_seconds: float,
    on_tick: Callable[[], Awaitable[None]] | None,
    tick_seconds: float,
) -> bool:
    """True if the process exited within `wall_seconds`; ticks between waits."""
    deadline = time.monotonic() + wall_seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), timeout=min(tick_seconds, left))
            return True
        except TimeoutError:
            if on_tick is not None and deadline > time.monotonic():
                await on_tick()
    return False


def _with_home(env: Mapping[str, str] | None, cwd: Path) -> dict[str, str]:
    """The given env (a clean one if None), with HOME and TMPDIR in the workspace unless set."""
    return {"HOME": str(cwd), "TMPDIR": str(cwd), **(clean_env() if env is None else env)}


def _limiter(limits: Limits) -> Callable[[], None]:
    """The function the child runs before exec: set each given limit, and no core dumps."""
    wanted = {resource.RLIMIT_CORE: 0}
    if limits.cpu_seconds is not None:
        wanted[resource.RLIMIT_CPU] = max(1, int(limits.cpu_seconds + 0.999))
    if limits.memory_mb is not None:
        wanted[resource.RLIMIT_AS] = limits.memory_mb * _MIB
    if limits.file_mb is not None:
        wanted[resource.RLIMIT_FSIZE] = limits.file_mb * _MIB
    if limits.processes is not None:
        wanted[resource.RLIMIT_NPROC] = limits.processes

    def apply() -> None:
        for kind, value in wanted.items():
            _, hard = resource.getrlimit(kind)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (capped, capped))

    return apply


def _outcome(returncode: int | None, timed_out: bool, wall: float, out: IO[bytes], err: IO[bytes]) -> Outcome:
    return Outcome(
        returncode=returncode,
        timed_out=timed_out,
        wall_seconds=wall,
        stdout_tail=tail(out),
        stderr_tail=tail(err),
    )


def tail(file: IO[bytes], size: int = TAIL_BYTES) -> str:
    """The last `size` bytes of a file being written, decoded with replacement characters."""
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - size))
    return file.read().decode("utf-8", errors="replace")
