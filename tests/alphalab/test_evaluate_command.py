"""`alphalab evaluate` and `alphalab doctor`, run as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hacks import KNOWN, assemble
from shared.domain import load_domain
from shared.sandbox import isolation

TRAFFIC = load_domain("traffic")


def _alphalab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("alphalab")), *args], capture_output=True, text=True, timeout=300
    )


def test_evaluate_grades_the_adapters_own_candidate_as_valid(tmp_path: Path) -> None:
    for name in TRAFFIC.candidate_files():
        shutil.copy(TRAFFIC.root / name, tmp_path / name)
    (tmp_path / "config.json").write_text(json.dumps({"model": "ridge_ar", "lags": 12}))
    done = _alphalab(
        "evaluate", "--domain", "traffic", str(tmp_path), "--config", str(tmp_path / "config.json"), "--json"
    )
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["valid"] and all(check["passed"] for check in verdict["checks"])
    assert verdict["value"] == verdict["metrics"]["mae"] > 0


def test_evaluate_names_each_failed_check_and_exits_1(tmp_path: Path) -> None:
    """A candidate that prints a perfect score while graded is invalid, and the table says why."""
    hack = next(h for h in KNOWN if h.name == "print-fake-metric")
    folder = assemble(hack, TRAFFIC, tmp_path / "candidate", TRAFFIC.manifest.budget)
    done = _alphalab("evaluate", "--domain", "traffic", str(folder))
    assert done.returncode == 1, done.stderr
    assert "INVALID" in done.stdout and "malformed: forecast 1 of 125" in done.stdout


def test_doctor_reports_the_isolation_in_force() -> None:
    sandbox = isolation()
    done = _alphalab("doctor")
    assert done.returncode == (0 if sandbox.complete else 1)
    assert f"sandbox: {sandbox.mode}" in done.stdout
    for aspect, _ in sandbox.protections:
        assert aspect in done.stdout
    for missing in sandbox.missing:
        assert missing.split(":")[0] in done.stdout
    if sandbox.mode == "bubblewrap" and sandbox.complete:  # issue 9: every kernel mechanism named
        for aspect in ("user", "ipc", "seccomp", "memory", "workspace", "host paths", "scratch"):
            assert f"ok       {aspect}" in done.stdout
