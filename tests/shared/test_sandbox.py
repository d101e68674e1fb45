"""The sandbox runs real child processes: limits, clean environments and whole-group kills."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.sandbox import Access, Limits, clean_env, isolation, run, run_async


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def _eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


SPAWN_GRANDCHILD_AND_SLEEP = """
import subprocess, time
grandchild = subprocess.Popen(["sleep", "60"])
open("grandchild.pid", "w").write(str(grandchild.pid))
time.sleep(60)
"""


def test_timeout_kills_the_child_and_its_grandchild(tmp_path: Path) -> None:
    """A run past its wall-clock limit is killed together with everything it spawned."""
    outcome = run(
        _python(SPAWN_GRANDCHILD_AND_SLEEP), cwd=tmp_path, limits=Limits(wall_seconds=1.5), access=None
    )
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert outcome.timed_out
    assert outcome.returncode == -9
    assert outcome.wall_seconds < 5
    assert _eventually(lambda: not _alive(grandchild))


def test_environment_carries_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child sees a fresh environment: none of our secrets, HOME in its workspace, one BLAS thread."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    outcome = run(_python(code), cwd=tmp_path, limits=Limits(wall_seconds=30), access=None)
    seen = json.loads(outcome.stdout_tail)
    assert "ANTHROPIC_API_KEY" not in seen and "AWS_SECRET_ACCESS_KEY" not in seen
    assert not any("secret" in value for value in seen.values())
    assert seen["HOME"] == str(tmp_path)
    assert seen["OMP_NUM_THREADS"] == "1"


def test_clean_env_adds_extra_variables_last() -> None:
    """Variables the caller passes are added to, and override, the clean base."""
    env = clean_env({"RUN_ID": "r1", "OMP_NUM_THREADS": "2"})
    assert env["RUN_ID"] == "r1"
    assert env["OMP_NUM_THREADS"] == "2"


def test_file_size_limit_stops_a_writer(tmp_path: Path) -> None:
    """A child writing past `file_mb` gets 'File too large' and the file stays at the limit."""
    code = "f = open('big.bin', 'wb')\nfor _ in range(8): f.write(b'x' * 1024 * 1024); f.flush()"
    outcome = run(_python(code), cwd=tmp_path, limits=Limits(wall_seconds=30, file_mb=1), access=None)
    assert outcome.returncode != 0
    assert "File too large" in outcome.stderr_tail
    assert (tmp_path / "big.bin").stat().st_size <= 1024 * 1024


def test_memory_limit_stops_an_allocator(tmp_path: Path) -> None:
    """A child allocating beyond `memory_mb` of address space fails with MemoryError."""
    code = "block = bytearray(1024 * 1024 * 1024)"
    outcome = run(_python(code), cwd=tmp_path, limits=Limits(wall_seconds=30, memory_mb=256), access=None)
    assert outcome.returncode != 0
    assert "MemoryError" in outcome.stderr_tail


def test_cpu_limit_stops_a_spinner(tmp_path: Path) -> None:
    """A child burning CPU is stopped by `cpu_seconds` long before the wall-clock limit."""
    outcome = run(
        _python("while True: pass"), cwd=tmp_path, limits=Limits(wall_seconds=60, cpu_seconds=1), access=None
    )
    assert not outcome.timed_out
    assert outcome.returncode is not None and outcome.returncode < 0
    assert outcome.wall_seconds < 20


def test_run_passes_input_and_keeps_only_the_tail(tmp_path: Path) -> None:
    """stdin gets `input`; stdout comes back as its last few KB, ending with the last line."""
    code = "import sys\ndata = sys.stdin.read()\nfor i in range(5000): print(i)\nprint(data)"
    outcome = run(_python(code), cwd=tmp_path, limits=Limits(wall_seconds=30), access=None, input=b"the end")
    assert outcome.returncode == 0
    assert len(outcome.stdout_tail) <= 4096
    assert outcome.stdout_tail.rstrip().endswith("4999\nthe end")


async def test_run_async_ticks_while_the_child_runs(tmp_path: Path) -> None:
    """`on_tick` is awaited every `tick_seconds` while the child is still running."""
    ticks: list[float] = []

    async def tick() -> None:
        ticks.append(time.monotonic())

    outcome = await run_async(
        _python("import time; time.sleep(1.5)"),
        cwd=tmp_path,
        limits=Limits(wall_seconds=30),
        access=None,
        on_tick=tick,
        tick_seconds=0.2,
    )
    assert outcome.returncode == 0 and not outcome.timed_out
    assert len(ticks) >= 4


async def test_run_async_timeout_kills_the_group(tmp_path: Path) -> None:
    """An async run past its wall-clock limit is killed with its grandchild and reported timed out."""
    outcome = await run_async(
        _python(SPAWN_GRANDCHILD_AND_SLEEP), cwd=tmp_path, limits=Limits(wall_seconds=1.5), access=None
    )
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert outcome.timed_out
    assert _eventually(lambda: not _alive(grandchild))


async def test_cancelling_run_async_kills_the_group(tmp_path: Path) -> None:
    """Cancelling the awaiting task kills the child and its grandchild instead of orphaning them."""
    task = asyncio.create_task(
        run_async(
            _python(SPAWN_GRANDCHILD_AND_SLEEP), cwd=tmp_path, limits=Limits(wall_seconds=60), access=None
        )
    )
    pid_file = tmp_path / "grandchild.pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    grandchild = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _eventually(lambda: not _alive(grandchild))


# --- isolation: what a sandboxed process can see and reach ---------------------------------------

PROBE = """
import json, os, socket
seen = {}
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    seen["loopback"] = True
except OSError:
    seen["loopback"] = False
seen["hidden"] = open(HIDDEN).read() if os.path.exists(HIDDEN) else None
try:
    open(OUTSIDE, "w").write("x")
    seen["wrote outside"] = True
except OSError:
    seen["wrote outside"] = False
open("inside.txt", "w").write("x")
seen["secret"] = os.environ.get("ANTHROPIC_API_KEY")
print(json.dumps(seen))
"""


@pytest.mark.parametrize("mode", ["bubblewrap", "namespaces"])
def test_a_sandboxed_process_cannot_reach_the_network_held_out_data_or_other_files(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each isolation mode that works here cuts the network and masks held-out data; bubblewrap also
    keeps every file outside the workspace out of reach."""
    try:
        isolation(mode)
    except ConfigError as err:
        pytest.skip(str(err))
    monkeypatch.setenv("ALPHALAB_SANDBOX", mode)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    server = socket.create_server(("127.0.0.1", 0))
    held_out = tmp_path / "held-out" / "targets.csv"
    held_out.parent.mkdir()
    held_out.write_text("the answers")
    outside = tmp_path / "outside.txt"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    code = PROBE.replace("PORT", str(server.getsockname()[1]))
    code = code.replace("HIDDEN", repr(str(held_out))).replace("OUTSIDE", repr(str(outside)))
    access = Access(workspace, hidden=(held_out.parent,))
    outcome = run(_python(code), cwd=workspace, limits=Limits(wall_seconds=30), access=access)
    server.close()
    assert outcome.returncode == 0, outcome.stderr_tail
    seen = json.loads(outcome.stdout_tail)
    assert seen["loopback"] is False and seen["hidden"] in (None, "") and seen["secret"] is None
    assert (workspace / "inside.txt").exists()
    if isolation(mode).own_user:  # the path may name the run's private /tmp inside: the host's is what counts
        assert not outside.exists()


def test_a_read_only_workspace_cannot_be_written(tmp_path: Path) -> None:
    if isolation().mode == "none":
        pytest.skip("no sandbox here")
    code = "open('cache.txt', 'w').write('what I was shown')"
    outcome = run(
        _python(code), cwd=tmp_path, limits=Limits(wall_seconds=30), access=Access(tmp_path, writable=False)
    )
    assert outcome.returncode != 0 and not (tmp_path / "cache.txt").exists()


ESCAPE_THE_SESSION = """
import os, subprocess, time
print(os.getuid(), flush=True)
subprocess.Popen(["sleep", "60"], start_new_session=True)
time.sleep(60)
"""


def test_a_process_that_starts_its_own_session_is_killed_with_the_run(tmp_path: Path) -> None:
    """With a uid per run, the kill reaches processes outside the run's process group."""
    if not isolation().own_user:
        pytest.skip("runs have no uid of their own here")
    limits = Limits(wall_seconds=3)
    outcome = run(_python(ESCAPE_THE_SESSION), cwd=tmp_path, limits=limits, access=Access(tmp_path))
    assert outcome.violation == "wall"
    assert outcome.failure(limits) == "exceeded 3 s of wall-clock time and was killed"
    uid = int(outcome.stdout_tail.split()[0])
    assert uid >= 100_000 and _eventually(lambda: not _processes_of(uid), seconds=15)


def test_a_workspace_over_its_disk_limit_is_killed(tmp_path: Path) -> None:
    code = "import os, time\nfor i in range(100):\n    open(f'f{i}', 'wb').write(os.urandom(1 << 20))\n"
    code += "time.sleep(30)"
    limits = Limits(wall_seconds=30, disk_mb=20)
    outcome = run(_python(code), cwd=tmp_path, limits=limits, access=Access(tmp_path))
    assert outcome.violation == "disk" and "wrote more than 20 MB of workspace" in (
        outcome.failure(limits) or ""
    )


def _processes_of(uid: int) -> list[str]:
    return [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == uid and _alive(int(p))]


def _uid_of(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


# --- issue 9: kernel isolation, run-wide memory, filesystem limits, no host paths, safe walks ----


def _strict() -> None:
    """The new isolation needs bubblewrap, root (to stage and mount) and a memory cgroup."""
    if isolation().mode != "bubblewrap" or os.geteuid() != 0:
        pytest.skip("needs bubblewrap run as root")


LEAVE_IPC = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
librt = ctypes.CDLL("librt.so.1", use_errno=True)
if "leave" in os.sys.argv:
    assert libc.shmget(0x5151, 4096, 0o1666) >= 0 and libc.msgget(0x5151, 0o1666) >= 0
    assert librt.mq_open(b"/sandbox-test", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0
    print("left")
else:
    print(libc.shmget(0x5151, 0, 0), libc.msgget(0x5151, 0), librt.mq_open(b"/sandbox-test", os.O_RDONLY))
"""


def test_ipc_objects_die_with_the_run_that_made_them(tmp_path: Path) -> None:
    _strict()
    limits, access = Limits(wall_seconds=30), Access(tmp_path)
    first = run([*_python(LEAVE_IPC), "leave"], cwd=tmp_path, limits=limits, access=access)
    assert first.stdout_tail.strip() == "left", first.stderr_tail
    second = run(_python(LEAVE_IPC), cwd=tmp_path, limits=limits, access=access)
    assert second.stdout_tail.split() == ["-1", "-1", "-1"], second.stderr_tail


SYSCALLS = """
import ctypes, errno, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def err(number, *args):
    return 0 if libc.syscall(number, *args) >= 0 else ctypes.get_errno()
seen = {
    "keyctl": err(250, 0, -3, 0), "add_key": err(248, b"user", b"k", b"v", 1, -3),
    "ptrace": err(101, 16, os.getppid(), 0, 0), "unshare": err(272, 0x10000000),
    "mount": err(165, b"none", b"/tmp", b"tmpfs", 0, 0), "bpf": err(321, 0, 0, 0),
    "userfaultfd": err(323, 0), "clone3": err(435, 0, 0),
}
thread = threading.Thread(target=lambda: None); thread.start(); thread.join()
seen["subprocess"] = subprocess.run(["true"]).returncode
print(seen)
"""


def test_the_seccomp_filter_denies_what_a_run_has_no_business_calling(tmp_path: Path) -> None:
    """Denied calls fail with EPERM (clone3 with ENOSYS, so libc falls back); threads and children work."""
    _strict()
    if os.uname().machine != "x86_64":
        pytest.skip("the probe uses x86_64 syscall numbers")
    outcome = run(_python(SYSCALLS), cwd=tmp_path, limits=Limits(wall_seconds=30), access=Access(tmp_path))
    seen = eval(outcome.stdout_tail)  # noqa: S307 - our own probe's dict of ints
    assert seen.pop("clone3") == 38 and seen.pop("subprocess") == 0, outcome.stderr_tail
    assert set(seen.values()) == {1}, seen  # EPERM


MANY_PROCESSES = """
import os, time
for _ in range(3):
    if os.fork() == 0:
        block = bytearray(150 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(20)
        os._exit(0)
time.sleep(20)
"""


def test_memory_is_bounded_for_the_run_as_a_whole(tmp_path: Path) -> None:
    """Three processes of 150 MB each fit a 256 MB address-space limit one by one, not the run's cgroup."""
    _strict()
    from shared.sandbox import cgroup

    if cgroup.available() is not None:
        pytest.skip(cgroup.available())
    limits = Limits(wall_seconds=20, memory_mb=256)
    outcome = run(_python(MANY_PROCESSES), cwd=tmp_path, limits=limits, access=Access(tmp_path))
    assert outcome.violation == "memory", outcome
    assert outcome.failure(limits) == "ran out of memory (256 MB of memory) and was killed by the kernel"
    assert outcome.wall_seconds < 15


HIDDEN_WRITES = """
import os
out = open("hidden.bin", "wb"); os.unlink("hidden.bin")
try:
    for _ in range(64):
        out.write(b"x" * (1 << 20)); out.flush()
except OSError as error:
    print("bytes", error.errno)
out.close()
try:
    for i in range(10_000):
        open(f"f{i}", "w").close()
except OSError as error:
    print("inodes", error.errno)
"""


def test_a_limited_workspace_counts_unlinked_files_and_inodes(tmp_path: Path) -> None:
    """The filesystem refuses what a walk would miss: a file written after its unlink, many empty files."""
    _strict()
    from shared.sandbox import workspace

    space = tmp_path / "workspace"
    space.mkdir()
    limits = Limits(wall_seconds=30, disk_mb=16, inodes=256)
    with workspace.limited(space, 16, 256) as mounted:
        assert mounted
        outcome = run(_python(HIDDEN_WRITES), cwd=space, limits=limits, access=Access(space))
    assert not os.path.ismount(space)
    assert "bytes 28" in outcome.stdout_tail  # ENOSPC
    assert outcome.violation == "inodes" or "inodes 28" in outcome.stdout_tail


SHOW_EVERYTHING = """
import os, sys
from pathlib import Path
parts = [os.getcwd(), sys.executable, " ".join(sys.argv), repr(dict(os.environ))]
for pid in ("self", "1"):
    for name in ("mountinfo", "cmdline", "environ"):
        parts.append(Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace"))
print("\\n".join(parts))
"""


def test_nothing_of_the_host_is_named_inside(tmp_path: Path) -> None:
    """Mount table, command lines and environments name /workspace and /opt only, never a host path."""
    _strict()
    from shared.sandbox import workspace

    space = tmp_path / "workspace"
    space.mkdir()
    with workspace.limited(space, 16, 256):
        outcome = run(
            [sys.executable, "-c", SHOW_EVERYTHING, str(space / "argument")],
            cwd=space,
            limits=Limits(wall_seconds=30),
            access=Access(space),
        )
    shown = outcome.stdout_tail
    assert "/workspace/argument" in shown, outcome.stderr_tail
    for host in (str(tmp_path), sys.prefix, str(Path(sys.executable).parent), str(Path.home()) + "/"):
        assert host not in shown, f"{host} is named inside"


def test_a_tree_100000_deep_is_walked_and_deleted(tmp_path: Path) -> None:
    """Walks and deletes are iterative and by descriptor: depth and PATH_MAX do not matter."""
    from shared.sandbox import workspace

    with workspace.limited(tmp_path, 512, 200_000):  # a tmpfs where we may mount one: faster
        _deep_tree_is_walked_and_deleted(tmp_path)


def _deep_tree_is_walked_and_deleted(tmp_path: Path) -> None:
    from shared.sandbox import tree

    fd = os.open(tmp_path, os.O_RDONLY)
    for _ in range(100_000):
        os.mkdir("d", dir_fd=fd)
        deeper = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    assert tree.usage(tmp_path / "d").inodes == 100_000
    tree.remove(tmp_path / "d")
    assert not (tmp_path / "d").exists()
