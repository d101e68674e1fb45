"""The whole machine stops: the CLI, every service and nats-server SIGKILLed at once, mid-campaign.
`alphalab resume` brings the stack back on the same home, and the campaign finishes from its log with
nothing lost or doubled."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphalab.chaos import verify
from shared.settings import Settings

ALPHALAB = str(Path(sys.executable).parent / "alphalab")


def _lab_processes(home: Path) -> list[int]:
    """Every process of this lab: services (ALPHALAB_HOME in their environment) and its nats-server."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"ALPHALAB_HOME={home}".encode() in environ or str(home).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def _kill_until_none_left(home: Path) -> None:
    """SIGKILL every lab process, again until a sweep finds none: a power loss stops everything at
    the same instant, while one sweep of /proc can miss a child forked after it was listed (a worker
    starting a grading's sandbox)."""
    for _ in range(50):
        victims = _lab_processes(home)
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _reboot(home: Path) -> None:
    """What the reboot after a power loss clears and killing processes does not: the lab's mounts
    (the size-limited tmpfs of the gradings that were running; their keepers were killed too)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(home))), reverse=True):
        subprocess.run(["umount", "-l", mount], check=True)


def _runs_done(home: Path) -> int:
    return sum(1 for log in (home / "logs").glob("worker-*.log") for line in log.open() if "run_done" in line)


@pytest.mark.timeout(900)
def test_resume_after_every_process_is_killed_at_once(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    command = [ALPHALAB, "run", "--domain", "traffic", "--experiments", "6"]
    cli = subprocess.Popen([*command, "--home", str(home)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 400
    while not ((home / "logs").exists() and _runs_done(home) >= 2):
        assert cli.poll() is None and time.monotonic() < deadline, "the campaign ended before the power loss"
        time.sleep(0.5)
    os.kill(cli.pid, signal.SIGKILL)
    _kill_until_none_left(home)
    cli.wait()
    time.sleep(0.5)
    assert not _lab_processes(home), "the power loss must leave nothing running"
    _reboot(home)

    resumed = subprocess.run(
        [ALPHALAB, "resume", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    [folder] = (home / "campaigns").iterdir()
    live = json.loads((folder / "projections.json").read_text())
    failures, events = verify(Settings(home=home), folder.name, live)
    assert not failures, failures
    assert live["status"] == "finished" and live["budget"]["experiments"] >= 6
