"""`alphalab run` on a user's own adapter folder and data file, as a newcomer would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.domain import builtin_domains

_ALPHALAB = str(Path(sys.executable).parent / "alphalab")


def _noisy_counts(path: Path, days: int = 14, sensors: int = 3) -> None:
    """A wide CSV of 15-minute counts with a daily cycle and noise."""
    rng = np.random.default_rng(0)
    steps = days * 96
    times = np.datetime64("2024-03-04T00:00") + np.arange(steps) * np.timedelta64(15, "m")
    cycle = 30 + 25 * np.sin(2 * np.pi * np.arange(steps) / 96)
    values = np.clip(cycle[:, None] * np.arange(1, sensors + 1) + rng.normal(0, 4, (steps, sensors)), 0, None)
    rows = [f"{t}," + ",".join(f"{v:.0f}" for v in row) for t, row in zip(times, values, strict=True)]
    path.write_text("timestamp," + ",".join(f"s{i}" for i in range(sensors)) + "\n" + "\n".join(rows) + "\n")


def _replayed(home: Path, env: dict[str, str]) -> dict[str, Any]:
    """The one campaign in `home`'s ledger, as `alphalab replay --json` rebuilds it."""
    done = subprocess.run(
        [_ALPHALAB, "replay", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    (view,) = json.loads(done.stdout)["campaigns"].values()
    return view  # type: ignore[no-any-return]


def test_run_takes_a_users_adapter_folder_and_data(tmp_path: Path) -> None:
    """A copied adapter folder plus a CSV runs a whole campaign; the ledger records both as given."""
    adapter = tmp_path / "my-adapter"
    shutil.copytree(builtin_domains()["traffic"], adapter)
    data = tmp_path / "counts.csv"
    _noisy_counts(data)
    home = tmp_path / "lab"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    args = ["run", "--domain", str(adapter), "--data", str(data), "--experiments", "3", "--workers", "1"]
    result = subprocess.run(
        [_ALPHALAB, *args, "--home", str(home)], capture_output=True, text=True, timeout=400, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Best result against every baseline" in result.stdout

    view = _replayed(home, env)
    assert (view["domain"], view["data"], view["status"]) == (str(adapter), str(data), "finished")
    rows = view["leaderboard"]["rows"]
    assert sorted(r["label"] for r in rows if r["baseline"]) == [
        "historical-average",
        "last-value",
        "seasonal-naive",
    ]
    assert view["budget"]["experiments"] == 3
    assert set(view["kanban"]["columns"]) == {"analyzed"}


def test_an_invalid_adapter_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    """A manifest with a bad metric direction stops `run` before anything starts."""
    adapter = tmp_path / "broken"
    shutil.copytree(builtin_domains()["traffic"], adapter)
    manifest = adapter / "domain.toml"
    manifest.write_text(manifest.read_text().replace('direction = "minimize"', 'direction = "lowest"'))
    result = subprocess.run(
        [_ALPHALAB, "run", "--domain", str(adapter), "--home", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "domain.toml" in result.stderr and "metric.direction" in result.stderr
    assert not (tmp_path / "lab" / "nats").exists()


def test_a_harness_that_lets_a_hack_through_stops_the_campaign_and_says_which(tmp_path: Path) -> None:
    """A harness that trusts a metrics file in the workspace is rejected in Phase 2: no experiment runs,
    and the CLI names the hack that got through."""
    adapter = tmp_path / "leaky"
    shutil.copytree(builtin_domains()["traffic"], adapter)
    harness = adapter / "harness.py"
    claimed = "(arguments.workspace / 'metrics.json')"
    leak = f"json.loads({claimed}.read_text()) if {claimed}.exists() else grade("
    harness.write_text(harness.read_text().replace("return grade(", f"return {leak}", 1))
    assert leak in harness.read_text(), "the traffic harness changed: plant the leak where it grades"
    home = tmp_path / "lab"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    args = ["run", "--domain", str(adapter), "--experiments", "3", "--workers", "1", "--home", str(home)]
    result = subprocess.run([_ALPHALAB, *args], capture_output=True, text=True, timeout=400, env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "The campaign did not start" in result.stdout
    assert "write-metrics-file" in result.stdout and "planted score" in result.stdout

    view = _replayed(home, env)
    assert view["harness"]["status"] == "rejected" and view["status"] == "finished"
    assert any(reason.startswith("write-metrics-file: got through") for reason in view["harness"]["reasons"])
    assert view["kanban"]["columns"] == {} and view["budget"]["experiments"] == 0


def test_a_data_file_the_explorer_refuses_ends_the_campaign_within_seconds(tmp_path: Path) -> None:
    """A CSV that is not a matrix of counts: the campaign ends at once with the explorer's reason,
    which the CLI prints, exit 1 - not "exploring the data" until the time budget runs out."""
    data = tmp_path / "counts.csv"
    data.write_text("these are\nnot counts\n")
    home = tmp_path / "lab"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    args = ["run", "--domain", "traffic", "--data", str(data), "--workers", "1", "--home", str(home)]
    started = time.monotonic()
    result = subprocess.run([_ALPHALAB, *args], capture_output=True, text=True, timeout=300, env=env)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ended before any experiment: exploration failed" in result.stdout
    assert str(data.name) in result.stdout, "the reason names the refused file"
    assert took < 90, f"took {took:.0f} s"
    view = _replayed(home, env)
    assert view["status"] == "finished" and view["failure"] and not view["experimented"]
