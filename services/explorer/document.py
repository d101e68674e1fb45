"""The data report as markdown: findings first, then the numbers behind them, the baselines, the plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.explorer.markdown import num, table
from services.explorer.profiles import Profile
from shared.events import BaselineEvaluated, CampaignStarted

__all__ = ["render"]


def render(
    campaign: CampaignStarted,
    profile: Profile,
    findings: Sequence[str],
    baselines: Sequence[BaselineEvaluated],
    plots: Iterable[str],
) -> str:
    """The whole report; plots are referenced by the file names under which they are stored."""
    sections = [f"## {heading}\n\n{body}" for heading, body in profile.sections]
    parts = [
        f"# Data report: {campaign.domain}",
        f"Objective: {campaign.objective.strip().rstrip('.') or '(none given)'}; metric `{campaign.metric}` "
        f"({campaign.direction}).",
        "## Findings",
        "\n".join(f"- {line}" for line in findings),
        *sections[:1],
        "## Baselines",
        _baselines(baselines, campaign),
        *sections[1:],
        "## Plots",
        "\n".join(f"![{name}]({name})" for name in plots),
    ]
    return "\n\n".join(parts) + "\n"


def _baselines(baselines: Sequence[BaselineEvaluated], campaign: CampaignStarted) -> str:
    if not baselines:
        return "The harness reported no baselines."
    ranked = sorted(baselines, key=lambda b: b.value, reverse=campaign.direction == "maximize")
    extra = sorted({name for b in ranked for name in b.metrics} - {campaign.metric})
    rows = [(b.name, f"{b.value:.6g}", *(num(b.metrics.get(m), 6) for m in extra)) for b in ranked]
    return table(("baseline", campaign.metric, *extra), rows)
