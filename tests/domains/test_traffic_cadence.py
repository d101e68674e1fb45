"""The traffic protocol at any cadence: horizons a quarter hour apart, about one origin per hour at
varying minutes past it, origins without an observed target skipped, and 5-minute and hourly files
graded end to end by the lab's own flow."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from domains.traffic.data import load_series
from shared.domain import load_domain
from shared.grading import evaluate
from tests.domains.traffic_cli import harness_json

DOMAIN = load_domain("traffic")
SECONDARY = {"mae", "rmse", "mape", "mae_h1", "mae_h2", "mae_h3", "mae_h4"}
# The steps ahead the grader scores: 15, 30, 45 and 60 minutes, or the next four readings when coarser.
HORIZON_STEPS = {5: (3, 6, 9, 12), 15: (1, 2, 3, 4), 60: (1, 2, 3, 4)}

# Forecasts zero (one cell a hair off in the first, so the answers are not constant) and logs each
# request's origin into its workspace: graded with the sandbox off, so that it may write there.
SPY = """
import json, sys
with open("requests.log", "w") as log:
    for count, line in enumerate(sys.stdin):
        request = json.loads(line)
        log.write(request["origin"] + "\\n")
        log.flush()
        forecast = [[0] * len(request["history"][-1]) for _ in range(4)]
        forecast[0][0] = 1e-9 if count == 0 else 0
        print(json.dumps({"forecast": forecast}), flush=True)
"""


def _write_counts(path: Path, step_minutes: int, days: int, gaps: slice | None = None) -> None:
    """Three detectors' counts from 2024-01-01 (a Monday): two rush hours, quieter weekends, Poisson
    noise; the rows in `gaps` are missing for every detector."""
    steps = days * 24 * 60 // step_minutes
    minutes = np.arange(steps) * step_minutes
    hours, weekday = minutes / 60 % 24, minutes // (24 * 60) % 7
    level = 5 + 25 * np.exp(-((hours - 8) ** 2) / 4) + 30 * np.exp(-((hours - 17) ** 2) / 6)
    level *= np.where(weekday >= 5, 0.7, 1.0) * step_minutes / 15
    values = np.random.default_rng(step_minutes).poisson(np.outer(level, [0.5, 1.0, 2.0])).astype(float)
    if gaps is not None:
        values[gaps] = np.nan
    times = np.datetime64("2024-01-01T00:00") + minutes.astype("timedelta64[m]")
    lines = ["timestamp,a,b,c"]
    for time, row in zip(times, values, strict=True):
        lines.append(f"{time}," + ",".join("" if math.isnan(v) else str(int(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")


def _spied_origins(path: Path, tmp_path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The rows the grader asked forecasts from (in order), and its verdict on the spy's zeros."""
    workspace = tmp_path / "spy"
    workspace.mkdir()
    (workspace / "candidate.py").write_text(SPY)
    verdict = harness_json("grade", "--workspace", str(workspace), "--data", str(path), sandbox="none")
    index = {str(stamp): row for row, stamp in enumerate(load_series(path).timestamps)}
    origins = [index[line] for line in (workspace / "requests.log").read_text().splitlines()]
    return np.array(origins), verdict


@pytest.fixture(scope="module", params=[5, 60], ids=["5-minute", "hourly"])
def counts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    step_minutes: int = request.param
    path = tmp_path_factory.mktemp(f"every-{step_minutes}-minutes") / "counts.csv"
    _write_counts(path, step_minutes, days=21)
    return step_minutes, path


def test_the_grader_forecasts_a_quarter_hour_apart_from_one_origin_per_hour(
    counts: tuple[int, Path], tmp_path: Path
) -> None:
    """Whatever the cadence, the four horizons reach the next hour, and origins come once an hour."""
    step_minutes, path = counts
    origins, verdict = _spied_origins(path, tmp_path)
    series = load_series(path)
    per_hour = max(1, 60 // step_minutes)
    first = len(series.timestamps) * 80 // 100 - 1
    assert origins[0] - first < per_hour and verdict["origins"] == len(origins)
    np.testing.assert_array_equal((origins - first) // per_hour, np.arange(len(origins)))
    truth = series.values[origins[:, None] + np.array(HORIZON_STEPS[step_minutes])]
    assert verdict["valid"] and verdict["value"] == pytest.approx(np.nanmean(np.abs(truth)))
    assert set(verdict["metrics"]) == SECONDARY


def test_origins_vary_their_minutes_past_the_hour_on_the_packaged_data(tmp_path: Path) -> None:
    """125 origins, one per hour, at every quarter hour and every hour of the day, in no fixed stride."""
    workspace = tmp_path / "spy"
    workspace.mkdir()
    (workspace / "candidate.py").write_text(SPY)
    harness_json("grade", "--workspace", str(workspace), sandbox="none")
    index = {str(stamp): row for row, stamp in enumerate(load_series().timestamps)}
    origins = np.array([index[line] for line in (workspace / "requests.log").read_text().splitlines()])
    assert len(origins) == 125 and origins[0] == 1995
    np.testing.assert_array_equal((origins - 1995) // 4, np.arange(125))
    quarter_hours = np.bincount(origins % 4, minlength=4)
    assert quarter_hours.min() >= 25 and len(set(np.diff(origins))) > 3
    assert len(set(origins // 4 % 24)) == 24


def test_origins_without_an_observed_target_are_not_graded(tmp_path: Path) -> None:
    """Three hours with no reading in the test split: no origin whose every target lies in them."""
    path = tmp_path / "gappy.csv"
    _write_counts(path, 15, days=10, gaps=slice(900, 912))
    origins, verdict = _spied_origins(path, tmp_path)
    series = load_series(path)
    targets = series.values[origins[:, None] + np.arange(1, 5)]
    assert verdict["valid"] and not np.isnan(targets).all(axis=(1, 2)).any()
    assert len(origins) < math.ceil((960 - 4 - 767) / 4)


def test_a_long_test_split_is_graded_from_at_most_250_origins(tmp_path: Path) -> None:
    """Sixteen days of test split would be 384 hourly origins: the grader spreads 250 at most over it."""
    path = tmp_path / "long.csv"
    _write_counts(path, 15, days=80)
    origins, verdict = _spied_origins(path, tmp_path)
    assert verdict["valid"] and 200 < len(origins) <= 250
    assert origins[-1] > len(load_series(path).timestamps) - 4 * 24


def test_5_minute_and_hourly_files_grade_end_to_end(counts: tuple[int, Path], tmp_path: Path) -> None:
    """The lab's own flow (prepare, sandboxed fit of the adapter's defaults, grade) and the baselines."""
    _, path = counts
    rows = {row["name"]: row for row in harness_json("baselines", "--data", str(path))["baselines"]}
    assert set(rows) == {"last-value", "seasonal-naive", "historical-average"}
    assert all(set(row["metrics"]) == SECONDARY for row in rows.values())
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", config={"seed": 0}, data=str(path)))
    assert verdict.valid, verdict.failures
    assert set(verdict.metrics) == SECONDARY
    assert verdict.value is not None and verdict.value < rows["last-value"]["value"]


def test_prepare_tells_the_candidate_the_steps_ahead_it_is_graded_on(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    _write_counts(path, 5, days=5)
    prepared = harness_json("prepare", "--workspace", str(tmp_path / "w"), "--data", str(path))
    assert prepared["horizons"] == list(HORIZON_STEPS[5])
    assert json.loads((tmp_path / "w" / "meta.json").read_text())["horizons"] == list(HORIZON_STEPS[5])
