"""The sandbox runs real child processes: limits, clean environments and whole-group kills."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.sandbox import Limits, clean_env, run, run_async


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
