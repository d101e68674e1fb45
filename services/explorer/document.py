"""The data report as markdown: findings first, then the numbers behind them, then the baselines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.explorer.findings import duration_text
from services.explorer.report import DataReport, SensorStats
from shared.events import BaselineEvaluated, CampaignStarted

__all__ = ["render"]


def render(
    campaign: CampaignStarted,
    report: DataReport,
    findings: Sequence[str],
    baselines: Sequence[BaselineEvaluated],
    plots: Iterable[str],
) -> str:
    """The whole report; plots are referenced by the file names under which they are stored."""
    parts = [
        f"# Data report: {campaign.domain}",
        f"Objective: {campaign.objective or '(none given)'}; metric `{campaign.metric}` "
        f"({campaign.direction}).",
        "## Findings",
        "\n".join(f"- {line}" for line in findings),
        "## Overview",
        _table(("statistic", "value"), _overview(report)),
        "## Baselines",
        _baselines(baselines, campaign),
        "## Sensors",
        _table(
            ("sensor", "missing", "longest gap", "zeros", "mean", "std", "min", "max"),
            [_sensor_row(s) for s in report.sensors],
        ),
        "## Plots",
        "\n".join(f"![{name}]({name})" for name in plots),
    ]
    return "\n\n".join(parts) + "\n"


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
        ("autocorrelation at 1 step", _num(r.acf_step)),
        ("autocorrelation at 1 day", _num(r.acf_day)),
        ("autocorrelation at 1 week", _num(r.acf_week)),
        ("daily peak / trough", f"{r.peak_time or '-'} / {r.trough_time or '-'}"),
        ("peak-to-trough ratio", _num(r.peak_to_trough)),
        ("weekend / weekday level", _num(r.weekend_ratio)),
        ("pairwise r: median (min, max)", f"{_num(r.corr_median)} ({_num(r.corr_min)}, {_num(r.corr_max)})"),
    ]
    for label, pair in (("most correlated", r.most_correlated), ("least correlated", r.least_correlated)):
        if pair is not None:
            rows.append((label, f"{pair[0]} ~ {pair[1]} (r = {pair[2]:.3f})"))
    return rows


def _baselines(baselines: Sequence[BaselineEvaluated], campaign: CampaignStarted) -> str:
    if not baselines:
        return "The harness reported no baselines."
    ranked = sorted(baselines, key=lambda b: b.value, reverse=campaign.direction == "maximize")
    extra = sorted({name for b in ranked for name in b.metrics})
    rows = [(b.name, f"{b.value:.6g}", *(_num(b.metrics.get(m), 6) for m in extra)) for b in ranked]
    return _table(("baseline", campaign.metric, *extra), rows)


def _sensor_row(s: SensorStats) -> tuple[str, ...]:
    return (
        s.name,
        f"{s.missing_share:.1%}",
        str(s.longest_gap),
        f"{s.zeros_share:.1%}",
        *(_num(v, 4) for v in (s.mean, s.std, s.min, s.max)),
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}g}"
