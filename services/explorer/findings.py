"""The findings: one-line observations a researcher would note first, each with the number behind it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.explorer.report import DAY, DataReport

__all__ = ["duration_text", "findings"]

MISSING_SENSOR = 0.05  # a sensor missing more than this share of its values is worth naming
STRONG_CYCLE, WEAK_CYCLE = 0.5, 0.2
HIGH_CORRELATION, LOW_CORRELATION = 0.7, 0.3
MANY_ZEROS = 0.05
SCALE_SPREAD = 10.0  # sensors whose mean levels differ by more than this factor need per-sensor scaling


def findings(report: DataReport) -> tuple[str, ...]:
    """One-line observations, each with the number behind it, in the order a reader needs them."""
    lines = [_shape_line(report), *_missing_lines(report), *_cycle_lines(report), *_level_lines(report)]
    if report.corr_median is not None:
        lines.append(_correlation_line(report))
    return tuple(lines)


def duration_text(delta: pd.Timedelta) -> str:
    """A time span the way a person writes it: 15 min, 1.5 h, 26.0 days."""
    if delta >= DAY:
        return f"{delta / DAY:.1f} days"
    if delta >= pd.Timedelta(hours=1):
        return f"{delta / pd.Timedelta(hours=1):.1f} h"
    return f"{delta / pd.Timedelta(minutes=1):g} min"


def _shape_line(r: DataReport) -> str:
    span = r.end - r.start + r.step
    return (
        f"{r.steps:,} steps x {len(r.sensors)} sensors at {duration_text(r.step)} steps, "
        f"{r.start:%Y-%m-%d %H:%M} to {r.end:%Y-%m-%d %H:%M} ({duration_text(span)})"
    )


def _missing_lines(r: DataReport) -> list[str]:
    if r.missing_share == 0:
        return ["no missing values"]
    lines = [f"{r.missing_share:.1%} of values are missing"]
    if r.absent_timestamps:
        lines[0] += f" ({r.absent_timestamps} timestamps have no reading from any sensor)"
    gappy = sorted((s for s in r.sensors if s.missing_share > MISSING_SENSOR), key=lambda s: -s.missing_share)
    if gappy:
        worst = gappy[0]
        lines.append(
            f"{len(gappy)} sensor{'s' if len(gappy) > 1 else ''} have >{MISSING_SENSOR:.0%} missing "
            f"(worst: {worst.name} at {worst.missing_share:.1%})"
        )
    longest = max(s.longest_gap for s in r.sensors)
    where = [s.name for s in r.sensors if s.longest_gap == longest]
    lines.append(
        f"longest gap: {longest} steps ({duration_text(longest * r.step)}) "
        + (f"in sensor {where[0]}" if len(where) == 1 else f"in {len(where)} sensors (e.g. {where[0]})")
    )
    return lines


def _strength(acf: float) -> str:
    return "strong" if acf >= STRONG_CYCLE else "weak" if acf >= WEAK_CYCLE else "no clear"


def _cycle_lines(r: DataReport) -> list[str]:
    lines = []
    if r.acf_step is not None:
        lines.append(f"persistence: autocorrelation at 1 step = {r.acf_step:.2f} (median over sensors)")
    if r.acf_day is not None:
        lines.append(f"{_strength(r.acf_day)} daily cycle: autocorrelation at 1 day = {r.acf_day:.2f}")
    else:
        lines.append("less than two days of data: the daily cycle cannot be measured")
    if r.acf_week is not None:
        line = f"{_strength(r.acf_week)} weekly cycle: autocorrelation at 1 week = {r.acf_week:.2f}"
        if r.acf_day is not None and r.acf_week > r.acf_day:
            line += " (higher than at 1 day: a weekly seasonal lag fits better than a daily one)"
        lines.append(line)
    if r.peak_time is not None and r.acf_day is not None and r.acf_day >= WEAK_CYCLE:
        ratio = f", peak/trough = {r.peak_to_trough:.1f}x" if r.peak_to_trough is not None else ""
        lines.append(f"mean daily profile peaks at {r.peak_time} and bottoms at {r.trough_time}{ratio}")
    if r.weekend_ratio is not None:
        lines.append(f"weekend level is {r.weekend_ratio:.2f}x the weekday level")
    return lines


def _level_lines(r: DataReport) -> list[str]:
    lines = []
    if r.zeros_share > MANY_ZEROS:
        lines.append(f"{r.zeros_share:.1%} of present values are zero (relative errors such as MAPE blow up)")
    if r.negative_values:
        lines.append(f"{r.negative_values} negative values")
    constant = [s.name for s in r.sensors if s.std == 0]
    if constant:
        lines.append(f"{len(constant)} constant sensors: {', '.join(constant[:5])}")
    means = [(s.mean, s.name) for s in r.sensors if np.isfinite(s.mean) and s.mean > 0]
    if len(means) > 1:
        (low, low_name), (high, high_name) = min(means), max(means)
        if high / low > SCALE_SPREAD:
            lines.append(
                f"sensor levels differ {high / low:.0f}x (mean {low:.3g} in {low_name} to {high:.3g} in "
                f"{high_name}): scale per sensor"
            )
    return lines


def _correlation_line(r: DataReport) -> str:
    assert r.corr_median is not None and r.most_correlated and r.least_correlated
    kind = (
        "highly"
        if r.corr_median >= HIGH_CORRELATION
        else "weakly"
        if r.corr_median < LOW_CORRELATION
        else "moderately"
    )
    line = f"sensors are {kind} correlated: median pairwise r = {r.corr_median:.2f}"
    (a, b, hi), (c, d, lo) = r.most_correlated, r.least_correlated
    if (a, b) == (c, d):  # a single pair
        return line
    return line + f" (most: {a}~{b} r = {hi:.2f}, least: {c}~{d} r = {lo:.2f})"
