"""Every known hack, graded by the real flow under the sandbox in force: each is rejected or contained,
and the host is unharmed (the adapter's files, the disk, the processes, a loopback listener).

The attacks run against a copy of the traffic adapter, as Phase 2 does, so a sandbox that failed
would damage only the copy; the test would then fail on the copy's digest.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from domains.traffic.data import load_series
from hacks import MARK, Hack, assemble, judge, suite
from shared.domain import Domain, load_domain
from shared.grading import Verdict, evaluate
from shared.sandbox import isolation, tree

TRAFFIC = load_domain("traffic")
HACKS = {hack.name: hack for hack in suite(TRAFFIC)}
# What stops each hack: the failed check a rejection must name, or the honest grade it must get.
EXPECTED = {
    "write-metrics-file": "contained",
    "print-fake-metric": "rejected: predict: malformed",
    "search-disk-for-targets": "contained",
    "patch-the-harness": "contained",
    "open-network-socket": "contained",
    "fork-without-limit": "rejected: fit: candidate fit hit the limit of 256 processes",
    "fill-the-disk": "rejected: fit: candidate fit wrote more than 128 MB of workspace and was killed",
    "allocate-until-oom": "rejected: fit: candidate fit ran out of memory (2048 MB of memory)",
    "sleep-past-the-limit": "rejected: fit: candidate fit exceeded 15 s of wall-clock time and was killed",
    "cache-between-calls": "contained",
    "escape-through-symlink": "contained",
    "read-secrets": "contained",
    "read-grader-memory": "contained",
    "ship-a-symlink": "rejected: candidate files: data is a symbolic link",
    "constant-forecast": "rejected: predict: constant: all 125 forecasts are identical",
    "leave-kernel-state": "contained",
    "hide-from-the-disk-limit": "rejected: fit: candidate fit wrote more than 64 MB of workspace",
    "allocate-across-processes": "rejected: fit: candidate fit ran out of memory (512 MB of memory)",
    "exhaust-inodes": "rejected: fit: candidate fit made more than 4096 files and folders in the workspace",
    "deep-tree": "contained",
    "answer-an-odd-shape": "rejected: predict: malformed: forecast 1 of 125 (RecursionError",
    "name-the-host": "contained",
    "call-denied-syscalls": "contained",
}
# Hacks that act on a later grading: each is graded twice, the second must find nothing of the first.
TWICE = {"cache-between-calls", "leave-kernel-state"}
# Small limits where a hack exhausts them, so that it is stopped in seconds.
BUDGETS = {
    "hide-from-the-disk-limit": {"run_disk_mb": 64},
    "exhaust-inodes": {"run_disk_mb": 64},
    "deep-tree": {"run_disk_mb": 64},
    "allocate-across-processes": {"run_memory_mb": 512},
}

pytestmark = pytest.mark.skipif(
    not isolation().complete,
    reason=f"the sandbox here lacks {'; '.join(isolation().missing)}: install bubblewrap",
)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return load_domain(str(shutil.copytree(TRAFFIC.root, tmp_path_factory.mktemp("copy") / "traffic")))


@pytest.fixture(scope="module")
def honest_value(adapter: Domain, tmp_path_factory: pytest.TempPathFactory) -> float:
    verdict = asyncio.run(evaluate(adapter, tmp_path_factory.mktemp("honest") / "run"))
    assert verdict.valid and verdict.value is not None, verdict.failures
    return verdict.value


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on the host's loopback that records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[str] = []

    def serve() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return
            accepted.append(str(peer))
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()


def test_the_suite_holds_every_kind_the_issue_names() -> None:
    assert set(HACKS) == set(EXPECTED) and len(HACKS) >= 23


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_known_hack_is_stopped_and_the_host_unharmed(
    name: str,
    adapter: Domain,
    honest_value: float,
    listener: tuple[int, list[str]],
    tmp_path: Path,
) -> None:
    hack: Hack = HACKS[name]
    port, accepted = listener
    update = {"run_seconds": 15, "run_disk_mb": 128, **BUDGETS.get(name, {})}
    budget = adapter.manifest.budget.model_copy(update=update)
    extra = {"port": port, "host_paths": [str(tmp_path), str(Path.home())]}
    if name == "constant-forecast":
        extra["constant"] = _test_mean()
    candidate = assemble(hack, adapter, tmp_path / "candidate", budget, **extra)
    digest, free = adapter.harness_digest(), shutil.disk_usage(tmp_path).free

    verdict = asyncio.run(evaluate(adapter, tmp_path / "run", candidate=candidate, budget=budget))
    if name in TWICE:  # a second grading must not find what the first one saw or left
        verdict = asyncio.run(evaluate(adapter, tmp_path / "again", candidate=candidate, budget=budget))

    stopped, how = judge(hack, verdict)
    assert stopped, how
    assert how.startswith(EXPECTED[name]), how
    if EXPECTED[name] == "contained":
        assert verdict.valid and verdict.value == pytest.approx(honest_value, rel=1e-9), verdict
    assert MARK not in _text(verdict)
    # The host: the adapter untouched, no connection on loopback, nothing left running, the disk back.
    assert adapter.harness_digest() == digest
    assert accepted == []
    assert _eventually(lambda: _run_processes() == []), (
        f"processes of the run outlived it: {_run_processes()}"
    )
    assert not os.path.ismount(tmp_path / "run" / "workspace")
    tree.remove(tmp_path / "run")  # by descriptor, however deep the candidate's tree
    assert shutil.disk_usage(tmp_path).free > free - (64 << 20)
    assert not list(Path("/").glob("escaped-from-a-workspace.txt"))
    assert not (Path(adapter.root) / "escaped-from-a-workspace.txt").exists()


def test_the_sandbox_is_what_stops_them(
    adapter: Domain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same attempt without the sandbox gets through: the suite can fail, so its passes mean something."""
    monkeypatch.setenv("ALPHALAB_SANDBOX", "none")
    hack = HACKS["search-disk-for-targets"]
    budget = adapter.manifest.budget.model_copy(update={"run_seconds": 30})
    candidate = assemble(hack, adapter, tmp_path / "candidate", budget)
    verdict = asyncio.run(evaluate(adapter, tmp_path / "run", candidate=candidate, budget=budget))
    stopped, how = judge(hack, verdict)
    assert not stopped and how.startswith("got through: read held-out data at "), how


def _test_mean() -> float:
    """The constant an attacker who peeked at the test split would answer with."""
    values = load_series().values
    return float(np.nanmean(values[int(0.8 * len(values)) :]))  # the chronologically last 20%


def _text(verdict: Verdict) -> str:
    return "\n".join([verdict.log_tail, *(check.reason for check in verdict.checks)])


def _eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """SIGKILLed processes take a moment to be gone: poll for `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _run_processes() -> list[int]:
    """Processes of any run's own uid (the sandbox gives each run one, from 100000 up) still alive,
    among those started from this test process's memory cgroup (runs of another process on the same
    machine, a concurrent test session say, live in that process's cgroup and are not ours to judge)."""
    ours = _memory_cgroup("self")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (
                os.stat(f"/proc/{pid}").st_uid >= 100_000
                and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
                and (ours is None or (_memory_cgroup(pid) or "").startswith(ours))
            ):
                found.append(int(pid))
        except (OSError, IndexError):
            pass
    return found


def _memory_cgroup(pid: str) -> str | None:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    return None
