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
from shared.sandbox import isolation

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
    assert set(HACKS) == set(EXPECTED) and len(HACKS) >= 12


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
    budget = adapter.manifest.budget.model_copy(update={"run_seconds": 15, "run_disk_mb": 128})
    extra = {"port": port, "constant": _test_mean()} if name == "constant-forecast" else {"port": port}
    candidate = assemble(hack, adapter, tmp_path / "candidate", budget, **extra)
    digest, free = adapter.harness_digest(), shutil.disk_usage(tmp_path).free

    verdict = asyncio.run(evaluate(adapter, tmp_path / "run", candidate=candidate, budget=budget))
    if name == "cache-between-calls":  # a second grading must not find what the first one saw
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
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
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
    """Processes of any run's own uid (the sandbox gives each run one, from 100000 up) still alive."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (
                os.stat(f"/proc/{pid}").st_uid >= 100_000
                and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
            ):
                found.append(int(pid))
        except (OSError, IndexError):
            pass
    return found
