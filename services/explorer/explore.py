"""One exploration, start to finish: data and baselines from the harness, statistics, findings, plots."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from services.explorer.document import render
from services.explorer.findings import findings
from services.explorer.harness import fetch
from services.explorer.plots import render_plots
from services.explorer.report import describe, to_matrix
from shared.events import BaselineEvaluated, CampaignStarted

__all__ = ["Exploration", "analyse", "baseline_finding", "explore"]


@dataclass(frozen=True, slots=True)
class Exploration:
    report: str  # markdown
    plots: dict[str, bytes]  # PNG by file name
    findings: tuple[str, ...]
    baselines: tuple[BaselineEvaluated, ...]


async def explore(campaign: CampaignStarted) -> Exploration:
    """Ask the harness for the training data and baselines, then describe them (off the event loop)."""
    with tempfile.TemporaryDirectory(prefix="alphalab-explore-") as scratch:
        frame, baselines = await fetch(campaign, Path(scratch))
    return await asyncio.to_thread(analyse, campaign, frame, baselines)


def analyse(
    campaign: CampaignStarted, frame: pd.DataFrame, baselines: Sequence[BaselineEvaluated]
) -> Exploration:
    """The report, findings and plots for an exported training matrix and its baselines."""
    matrix = to_matrix(frame)
    report = describe(matrix)
    lines = findings(report)
    if (best := baseline_finding(baselines, campaign)) is not None:
        lines = (*lines, best)
    plots = render_plots(matrix)
    return Exploration(
        report=render(campaign, report, lines, baselines, plots),
        plots=plots,
        findings=lines,
        baselines=tuple(baselines),
    )


def baseline_finding(baselines: Sequence[BaselineEvaluated], campaign: CampaignStarted) -> str | None:
    """Which baseline a candidate has to beat, and by how much it beats the runner-up."""
    if not baselines:
        return None
    ranked = sorted(baselines, key=lambda b: b.value, reverse=campaign.direction == "maximize")
    best = ranked[0]
    line = f"baseline to beat: {best.name} with {campaign.metric} = {best.value:.4g}"
    if len(ranked) > 1:
        line += f" (next best: {ranked[1].name} = {ranked[1].value:.4g})"
    return line
