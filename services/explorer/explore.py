"""One exploration, start to finish: data and baselines from the harness, statistics, findings, plots."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.explorer.document import render
from services.explorer.harness import Exported, fetch
from services.explorer.profiles import Profile, profile
from shared.domain import Data
from shared.events import BaselineEvaluated, CampaignStarted
from shared.inputs import Resolved

__all__ = ["Exploration", "analyse", "baseline_finding", "explore"]


@dataclass(frozen=True, slots=True)
class Exploration:
    report: str  # markdown
    plots: dict[str, bytes]  # PNG by file name
    findings: tuple[str, ...]
    baselines: tuple[BaselineEvaluated, ...]


async def explore(campaign: CampaignStarted, inputs: Resolved) -> Exploration:
    """Ask the harness for the training data and baselines, then describe them (off the event loop)."""
    with tempfile.TemporaryDirectory(prefix="alphalab-explore-") as scratch:
        exported, baselines = await fetch(inputs, Path(scratch))
    data = inputs.domain.manifest.data
    return await asyncio.to_thread(analyse, campaign, exported, baselines, data)


def analyse(
    campaign: CampaignStarted,
    exported: Exported,
    baselines: Sequence[BaselineEvaluated],
    data: Data = Data(),  # noqa: B008 - frozen
) -> Exploration:
    """The report, findings and plots for what the harness exported (or profiled itself) and its baselines."""
    described = exported if isinstance(exported, Profile) else profile(exported, data)
    lines = described.findings
    if (best := baseline_finding(baselines, campaign)) is not None:
        lines = (*lines, best)
    return Exploration(
        report=render(campaign, described, lines, baselines, described.plots),
        plots=described.plots,
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
