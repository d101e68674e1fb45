"""A time series: a wide matrix of sensors on a time grid (gaps, cycles, levels, cross-correlation)."""

from __future__ import annotations

import pandas as pd

from services.explorer.findings import duration_text, findings
from services.explorer.markdown import num, table
from services.explorer.plots import render_plots
from services.explorer.profiles.profile import Profile
from services.explorer.report import DataReport, SensorStats, describe, to_matrix
from shared.domain import Data

__all__ = ["timeseries_profile"]


def timeseries_profile(frame: pd.DataFrame, data: Data) -> Profile:
    matrix = to_matrix(frame)
    report = describe(matrix)
    sensors = table(
        ("sensor", "missing", "longest gap", "zeros", "mean", "std", "min", "max"),
        [_sensor_row(s) for s in report.sensors],
    )
    return Profile(
        findings=findings(report),
        sections=(("Overview", table(("statistic", "value"), _overview(report))), ("Sensors", sensors)),
        plots=render_plots(matrix),
    )


def _overview(r: DataReport) -> list[tuple[str, str]]:
    rows = [
        ("steps", f"{r.steps:,}"),
        ("sensors", str(len(r.sensors))),
        ("time range", f"{r.start:%Y-%m-%d %H:%M} to {r.end:%Y-%m-%d %H:%M}"),
        ("step", duration_text(r.step)),
        ("timestamps without any reading", str(r.absent_timestamps)),
        ("missing values", f"{r.missing_share:.2%}"),
        ("zero values", f"{r.zeros_share:.2%}"),
        ("negative values", str(r.negative_values)),
        ("autocorrelation at 1 step", num(r.acf_step)),
        ("autocorrelation at 1 day", num(r.acf_day)),
        ("autocorrelation at 1 week", num(r.acf_week)),
        ("daily peak / trough", f"{r.peak_time or '-'} / {r.trough_time or '-'}"),
        ("peak-to-trough ratio", num(r.peak_to_trough)),
        ("weekend / weekday level", num(r.weekend_ratio)),
        ("pairwise r: median (min, max)", f"{num(r.corr_median)} ({num(r.corr_min)}, {num(r.corr_max)})"),
    ]
    for label, pair in (("most correlated", r.most_correlated), ("least correlated", r.least_correlated)):
        if pair is not None:
            rows.append((label, f"{pair[0]} ~ {pair[1]} (r = {pair[2]:.3f})"))
    return rows


def _sensor_row(s: SensorStats) -> tuple[str, ...]:
    return (
        s.name,
        f"{s.missing_share:.1%}",
        str(s.longest_gap),
        f"{s.zeros_share:.1%}",
        *(num(v, 4) for v in (s.mean, s.std, s.min, s.max)),
    )
