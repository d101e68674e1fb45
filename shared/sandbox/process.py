"""Starting, watching and killing one sandboxed process.

Every child starts a session of its own; a watch thread enforces the wall clock and the workspace's
disk limit, and at the end of a run, on a violation or on cancellation, the whole tree is killed: the
session's group and, where the run has a uid of its own, every process of that uid (which also catches
a grandchild that started a session of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.sandbox import bubblewrap, cgroup, devices, namespaces, seccomp, tree, workspace
from shared.sandbox import limits as rlimit
from shared.sandbox.access import Access
from shared.sandbox.isolation import isolation
from shared.sandbox.limits import Limits

__all__ = ["Outcome", "Running", "clean_env", "run", "run_async", "started", "tail"]

TAIL_BYTES = 4096
SANDBOX_ENV = "ALPHALAB_SANDBOX"
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_RUN_UIDS = (100_000, 100_000)  # first uid, how many: one is drawn per run
_WATCH_SECONDS = 0.25
_OUT_OF_MEMORY = (
    "MemoryError",
    "Cannot allocate memory",
    "std::bad_alloc",
    "DefaultCPUAllocator: can't allocate",
)


@dataclass(frozen=True)
class Outcome:
    """How a run ended; the tails are the last few KB of its output, decoded leniently.

    `violation` names the limit it was killed for (`wall`, `disk`, `inodes` or `memory`), if any.
    """

    returncode: int | None
    violation: str | None
    wall_seconds: float
    stdout_tail: str
    stderr_tail: str

    @property
    def timed_out(self) -> bool:
        return self.violation == "wall"

    def failure(self, limits: Limits) -> str | None:
        """What went wrong, as a phrase naming the limit it hit where one did; None for a clean exit."""
        return describe(self.returncode, self.violation, self.stderr_tail, limits)


def describe(returncode: int | None, violation: str | None, stderr: str, limits: Limits) -> str | None:
    """The reason a sandboxed process failed, or None if it exited with 0 inside its limits."""
    if violation == "wall":
        return f"exceeded {limits.named('wall')} and was killed"
    if violation == "disk":
        return f"wrote more than {limits.named('disk')} and was killed"
    if violation == "inodes":
        return f"made more than {limits.named('inodes')} and was killed"
    if violation == "memory":
        return f"ran out of memory ({limits.named('memory')}) and was killed by the kernel"
    if returncode is None or returncode == 0:
        return None
    if returncode < 0:
        signal_name = signal.Signals(-returncode).name
        if signal_name == "SIGXCPU" and limits.cpu_seconds is not None:
            return f"exceeded {limits.named('cpu')} and was killed ({signal_name})"
        if signal_name == "SIGXFSZ" and limits.file_mb is not None:
            return f"wrote a file over {limits.named('file')} and was killed ({signal_name})"
        return f"was killed by {signal_name}"
    if limits.memory_mb is not None and any(mark in stderr for mark in _OUT_OF_MEMORY):
        return f"ran out of memory ({limits.named('memory')}) and exited with code {returncode}"
    if limits.processes is not None and "Resource temporarily unavailable" in stderr:
        return f"hit the limit of {limits.named('processes')} and exited with code {returncode}"
    if limits.file_mb is not None and "File too large" in stderr:
        return f"wrote a file over {limits.named('file')} and exited with code {returncode}"
    return f"exited with code {returncode}"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment built from scratch, never copied from ours, so no key or token leaks in.

    Numeric libraries get one thread each: the worker runs several candidates side by side and sizes
    them by cores. The sandbox mode is passed on, so a harness sandboxes its candidate the same way,
    and so is the run's GPU grant (`devices`: `CUDA_VISIBLE_DEVICES`, empty for a CPU run).
    `extra` is added last and wins.
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
    if SANDBOX_ENV in os.environ:
        env[SANDBOX_ENV] = os.environ[SANDBOX_ENV]
    env.update(devices.environment())
    env.update(extra or {})
    return env


@dataclass
class Running:
    """A started process and its watch; `violation` is set if the watch killed it."""

    process: subprocess.Popen[bytes]
    watch: _Watch

    @property
    def violation(self) -> str | None:
        return self.watch.violation


@contextlib.contextmanager
def started(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    access: Access | None,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> Iterator[Running]:
    """Start `argv` in `cwd`, watched; on leaving, kill whatever of it is left and reap it."""
    launch = _launch(argv, limits, access, cwd)
    try:
        process = subprocess.Popen(
            launch.argv, stdin=stdin, stdout=stdout, stderr=stderr, **_spawning(launch, cwd, env)
        )
    except BaseException:
        launch.close()
        raise
    launch.started()
    watch = _Watch(process.pid, launch, limits, access)
    try:
        yield Running(process, watch)
    finally:
        watch.stop()
        _kill(process.pid, launch)
        process.wait()
        watch.final()
        launch.close()


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    access: Access | None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> Outcome:
    """Run to completion or to a limit; whatever of its tree is left is killed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        begun = time.monotonic()
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        with (
            started(
                argv, cwd=cwd, limits=limits, access=access, env=env, stdin=stdin, stdout=out, stderr=err
            ) as running,
            contextlib.suppress(BrokenPipeError),
        ):
            running.process.communicate(input)
        return _outcome(running.process.returncode, running.violation, time.monotonic() - begun, out, err)


async def run_async(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    access: Access | None,
    env: Mapping[str, str] | None = None,
    on_tick: Callable[[], Awaitable[None]] | None = None,
    tick_seconds: float = 5.0,
) -> Outcome:
    """`run` in asyncio, awaiting `on_tick` every `tick_seconds` meanwhile; cancelling kills the tree."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        begun = time.monotonic()
        launch = _launch(argv, limits, access, cwd)
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, **_spawning(launch, cwd, env)
            )
        except BaseException:
            launch.close()
            raise
        launch.started()
        watch = _Watch(process.pid, launch, limits, access)
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(process.wait()), timeout=tick_seconds)
                    break
                except TimeoutError:
                    if on_tick is not None and watch.violation is None:
                        await on_tick()
        finally:
            watch.stop()
            _kill(process.pid, launch)
            await asyncio.shield(process.wait())
            watch.final()
            launch.close()
        return _outcome(process.returncode, watch.violation, time.monotonic() - begun, out, err)


@dataclass
class _Launch:
    argv: list[str]
    preexec: Callable[[], None]
    uid: int | None  # the run's own uid, where it has one
    group: cgroup.Group | None = None  # the run's memory cgroup, where there is one
    fds: tuple[int, ...] = ()  # passed to the child (the seccomp program); closed once it started
    translate: Callable[[str], str] = str

    def started(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = ()

    def close(self) -> None:
        self.started()
        if self.group is not None:
            self.group.remove()


def _spawning(launch: _Launch, cwd: Path, env: Mapping[str, str] | None) -> dict[str, Any]:
    """How every sandboxed child is started: in `cwd`, a session of its own, the launch's pre-exec."""
    home = _with_home(env, cwd)
    return {
        "cwd": cwd,
        "env": {name: launch.translate(value) for name, value in home.items()},
        "start_new_session": True,
        "preexec_fn": launch.preexec,
        "pass_fds": launch.fds,
    }


def _launch(argv: Sequence[str], limits: Limits, access: Access | None, cwd: Path) -> _Launch:
    """The command line and the child's pre-exec steps for the isolation in force."""
    wanted = rlimit.rlimits(limits)
    if access is None:
        return _Launch(list(argv), functools.partial(rlimit.apply, wanted), None)
    mode = isolation(os.environ.get(SANDBOX_ENV, "auto"))
    uid = _RUN_UIDS[0] + secrets.randbelow(_RUN_UIDS[1]) if mode.own_user else None
    if uid is not None:
        tree.chown(access.workspace, uid)
    elif limits.processes is not None and os.geteuid() != 0:
        wanted = rlimit.rlimits(limits, processes_already=_processes_of(os.getuid()))
    apply_limits = functools.partial(rlimit.apply, wanted)
    group = cgroup.create(limits.memory_mb) if limits.memory_mb is not None and mode.mode != "none" else None
    steps: list[Callable[[], None]] = [group.join] if group is not None else []
    if mode.mode == "bubblewrap":
        program = seccomp.program_fd()
        wrapped = bubblewrap.command(
            argv,
            cwd=cwd,
            access=access,
            uid=uid,
            tmp_mb=limits.tmp_mb,
            tmp_inodes=limits.tmp_inodes,
            seccomp_fd=program,
        )
        steps += [*filter(None, [wrapped.preexec]), apply_limits]
        return _Launch(wrapped.argv, _chain(steps), uid, group, (program,), wrapped.translate)
    if mode.mode == "namespaces":
        steps += [namespaces.enter(access, limits.tmp_mb), apply_limits]
        if uid is not None:
            steps.append(functools.partial(namespaces.drop_to, uid))
        return _Launch(list(argv), _chain(steps), uid, group)
    return _Launch(list(argv), _chain([*steps, apply_limits]), uid, group)


def _chain(steps: Sequence[Callable[[], None]]) -> Callable[[], None]:
    def run_all() -> None:
        for step in steps:
            step()

    return run_all


class _Watch:
    """A thread that kills the run at its wall-clock limit, when its workspace fills up (`disk_mb`,
    `inodes`), or when the kernel killed one of its processes for memory (the run's cgroup)."""

    def __init__(self, pid: int, launch: _Launch, limits: Limits, access: Access | None) -> None:
        self.violation: str | None = None
        self._pid, self._launch, self._limits = pid, launch, limits
        watched = access is not None and access.writable and (limits.disk_mb or limits.inodes)
        self._disk = workspace.Gauge(access.workspace, limits) if watched and access is not None else None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"sandbox-watch-{pid}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def final(self) -> None:
        """After the run: a memory kill, or a full workspace, that the watch had no time to see (a
        run that crashes on ENOSPC at once, say)."""
        if self.violation is None and self._launch.group is not None and self._launch.group.out_of_memory():
            self.violation = "memory"
        if self.violation is None and self._disk is not None:
            self.violation = self._disk.over()

    def _watch(self) -> None:
        deadline = time.monotonic() + self._limits.wall_seconds
        group = self._launch.group
        while not self._stopped.wait(min(_WATCH_SECONDS, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self.violation = "wall"
            elif group is not None and group.out_of_memory():
                self.violation = "memory"
            elif self._disk is not None:
                self.violation = self._disk.over()
            if self.violation is not None:
                _kill(self._pid, self._launch)
                return


def _kill(pid: int, launch: _Launch) -> None:
    """SIGKILL the group `pid` leads, everything in the run's cgroup and, if the run has a uid of its
    own, every process of that uid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if launch.group is not None:
        launch.group.kill()
    if launch.uid is not None:
        for other in _pids_of(launch.uid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(other, signal.SIGKILL)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    pids.append(int(entry.name))
    return pids


def _processes_of(uid: int) -> int:
    """Threads included: the kernel's process limit counts each of them."""
    count = 0
    for pid in _pids_of(uid):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{pid}/task"))
    return count


def _with_home(env: Mapping[str, str] | None, cwd: Path) -> dict[str, str]:
    """The given env (a clean one if None), with HOME and TMPDIR in the workspace unless set."""
    return {"HOME": str(cwd), "TMPDIR": str(cwd), **(clean_env() if env is None else env)}


def _outcome(
    returncode: int | None, violation: str | None, wall: float, out: IO[bytes], err: IO[bytes]
) -> Outcome:
    return Outcome(
        returncode=returncode,
        violation=violation,
        wall_seconds=wall,
        stdout_tail=tail(out),
        stderr_tail=tail(err),
    )


def tail(file: IO[bytes], size: int = TAIL_BYTES) -> str:
    """The last `size` bytes of a file being written, decoded with replacement characters."""
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - size))
    return file.read().decode("utf-8", errors="replace")
