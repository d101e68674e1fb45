"""The explorer's statistics and findings on synthetic matrices whose properties are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.explorer.document import render
from services.explorer.explore import analyse, baseline_finding
from services.explorer.findings import findings
from services.explorer.plots import render_plots
from services.explorer.profiles.timeseries import timeseries_profile
from services.explorer.report import BadMatrix, describe, to_matrix
from shared.domain import Data
from shared.events import BaselineEvaluated, CampaignStarted

STEPS_PER_DAY = 96  # 15-minute steps
CAMPAIGN = CampaignStarted(domain="toy", objective="forecast", metric="rmse", direction="minimize")


def _matrix(days: int = 21, sensors: int = 4, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Sensors that follow one daily sine (peak at 12:00) at different levels, with a little noise."""
    rng = np.random.default_rng(seed)
    steps = days * STEPS_PER_DAY
    time = pd.date_range("2024-01-01", periods=steps, freq="15min")  # a Monday
    phase = 2 * np.pi * (np.arange(steps) % STEPS_PER_DAY) / STEPS_PER_DAY
    daily = 1 - np.cos(phase)  # 0 at midnight, 2 at noon
    columns = {f"s{i}": (i + 1) * 10 * (daily + 0.2) + rng.normal(0, noise, steps) for i in range(sensors)}
    return pd.DataFrame({"timestamp": time, **columns})


def test_a_daily_sine_has_a_strong_daily_cycle_peaking_at_noon() -> None:
    """A pure daily sine gives autocorrelation near 1 at one day and at one week, peaking at 12:00."""
    report = describe(to_matrix(_matrix()))
    assert report.acf_day is not None and report.acf_day > 0.99
    assert report.acf_week is not None and report.acf_week > 0.99
    assert report.peak_time == "12:00" and report.trough_time == "00:00"
    assert report.weekend_ratio == pytest.approx(1.0, abs=0.01)
    assert any(
        line.startswith("strong daily cycle: autocorrelation at 1 day = 1.00") for line in findings(report)
    )


def test_white_noise_has_no_daily_cycle() -> None:
    """Independent noise has no daily cycle, and the findings say so."""
    rng = np.random.default_rng(1)
    frame = _matrix(days=10)
    frame[["s0", "s1"]] = rng.normal(5, 1, (len(frame), 2))
    report = describe(to_matrix(frame[["timestamp", "s0", "s1"]]))
    assert report.acf_day is not None and abs(report.acf_day) < 0.1
    assert any(line.startswith("no clear daily cycle") for line in findings(report))


def test_short_data_has_no_weekly_statistics() -> None:
    """With under two weeks the weekly autocorrelation is not measured rather than guessed."""
    report = describe(to_matrix(_matrix(days=5)))
    assert report.acf_week is None and report.weekend_ratio is None
    assert report.acf_day is not None


def test_injected_missing_values_are_counted_per_sensor_with_the_longest_gap() -> None:
    """NaNs put in by hand show up in the overall share, per sensor, as the longest gap, and in findings."""
    frame = _matrix(days=7)
    frame.loc[100:199, "s1"] = np.nan  # 100 steps in a row
    frame.loc[[5, 50, 500], "s2"] = np.nan
    report = describe(to_matrix(frame))
    cells = len(frame) * 4
    assert report.missing_share == pytest.approx(103 / cells)
    by_name = {s.name: s for s in report.sensors}
    assert by_name["s1"].missing_share == pytest.approx(100 / len(frame))
    assert (by_name["s1"].longest_gap, by_name["s2"].longest_gap, by_name["s0"].longest_gap) == (100, 1, 0)
    lines = findings(report)
    assert "1 sensor have >5% missing (worst: s1 at 14.9%)" in lines
    assert "longest gap: 100 steps (1.0 days) in sensor s1" in lines


def test_absent_timestamps_become_missing_rows_of_the_regular_grid() -> None:
    """Rows dropped from the export are put back as missing, so that lags stay true to time."""
    frame = _matrix(days=3).drop(index=range(10, 14)).sample(frac=1, random_state=0)  # and shuffled
    matrix = to_matrix(frame)
    assert len(matrix) == 3 * STEPS_PER_DAY and matrix.index.is_monotonic_increasing
    report = describe(matrix)
    assert report.absent_timestamps == 4
    assert report.steps == 3 * STEPS_PER_DAY and report.step == pd.Timedelta(minutes=15)
    lines = findings(report)
    assert "longest gap: 4 steps (1.0 h) in 4 sensors (e.g. s0)" in lines
    assert any(line.endswith("(4 timestamps have no reading from any sensor)") for line in lines)


def test_identical_sensors_have_correlation_one() -> None:
    """Two identical sensors are the most correlated pair, at r = 1."""
    rng = np.random.default_rng(2)
    frame = _matrix(days=3, sensors=2)
    frame["twin"] = frame["s0"]
    frame["other"] = rng.normal(0, 1, len(frame))
    report = describe(to_matrix(frame))
    assert report.most_correlated is not None
    assert set(report.most_correlated[:2]) == {"s0", "twin"}
    assert report.most_correlated[2] == pytest.approx(1.0)
    assert report.least_correlated is not None and "other" in report.least_correlated[:2]


def test_highly_correlated_sensors_are_reported_with_the_median_r() -> None:
    """Sensors following one cycle are called highly correlated, with the median pairwise r."""
    report = describe(to_matrix(_matrix(days=7)))
    line = next(line for line in findings(report) if line.startswith("sensors are"))
    assert line.startswith("sensors are highly correlated: median pairwise r = 1.00")


def test_zeros_constant_sensors_and_scale_spread_are_found() -> None:
    """Many zeros, a constant sensor and levels 100x apart each give a finding with the number."""
    frame = _matrix(days=2, sensors=2)
    frame["quiet"] = 0.0
    frame["busy"] = frame["s0"] * 100
    report = describe(to_matrix(frame))
    text = "\n".join(findings(report))
    assert "25.0% of present values are zero" in text
    assert "1 constant sensors: quiet" in text
    assert "sensor levels differ 100x" in text


def test_a_matrix_without_timestamps_is_refused_by_name() -> None:
    """A matrix with no timestamp column is refused with a message naming the column."""
    with pytest.raises(BadMatrix, match="'timestamp'"):
        to_matrix(pd.DataFrame({"a": [1.0, 2.0]}))


def test_the_best_baseline_depends_on_the_direction() -> None:
    """The baseline to beat is the lowest for a minimized metric and the highest for a maximized one."""
    baselines = [BaselineEvaluated(name="last", value=2.0), BaselineEvaluated(name="seasonal", value=1.5)]
    assert baseline_finding(baselines, CAMPAIGN) == (
        "baseline to beat: seasonal with rmse = 1.5 (next best: last = 2)"
    )
    maximize = CAMPAIGN.model_copy(update={"direction": "maximize"})
    assert (baseline_finding(baselines, maximize) or "").startswith("baseline to beat: last")


def test_the_markdown_report_has_findings_tables_and_plots() -> None:
    """The rendered report lists the findings, the overview, baselines, every sensor and every plot."""
    profile = timeseries_profile(_matrix(days=8), Data())
    baselines = [BaselineEvaluated(name="seasonal", value=1.5, metrics={"mae": 1.0})]
    text = render(CAMPAIGN, profile, profile.findings, baselines, ["daily_profile.png"])
    for fragment in ("# Data report: toy", "## Findings", "| steps | 768 |", "| seasonal | 1.5 | 1 |"):
        assert fragment in text
    assert "| s3 | 0.0% | 0 |" in text and "![daily_profile.png](daily_profile.png)" in text


def test_analysis_renders_at_least_three_png_plots() -> None:
    """A week of data with gaps gets all five plots, each a PNG."""
    frame = _matrix(days=8)
    frame.loc[10:20, "s0"] = np.nan
    plots = render_plots(to_matrix(frame))
    assert set(plots) == {
        "series_heatmap.png",
        "daily_profile.png",
        "weekly_profile.png",
        "correlation.png",
        "missing_map.png",
    }
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in plots.values())


def test_analyse_puts_the_baseline_finding_last() -> None:
    """The whole analysis ends its findings with the baseline to beat and keeps every baseline."""
    baselines = [BaselineEvaluated(name="seasonal", value=1.5)]
    exploration = analyse(CAMPAIGN, _matrix(days=3, sensors=1), baselines)
    assert exploration.findings[-1].startswith("baseline to beat: seasonal")
    assert exploration.baselines == tuple(baselines)
    assert "sensors are" not in exploration.report  # one sensor: no pairwise correlation
    assert len(exploration.plots) == 2
