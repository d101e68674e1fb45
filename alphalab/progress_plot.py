"""The campaign's progress as a PNG: each graded run's value in the order results came, the best so far,
and the best baseline; what the dashboard draws, written into the campaign folder at its end."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from services.explorer.plots import png
from shared.projections import CampaignView

__all__ = ["progress_png"]


def progress_png(view: CampaignView) -> bytes:
    board = view.leaderboard
    values = [graded.value for graded in board.history]
    best: list[float] = []
    for value in values:
        best.append(value if not best or board.better(value, best[-1]) else best[-1])
    fig = Figure(figsize=(7, 3.6))
    axes = fig.subplots()
    runs = range(1, len(values) + 1)
    axes.scatter(runs, values, s=12 if len(values) < 500 else 2, alpha=0.6, label="graded run")
    axes.step(runs, best, where="post", color="tab:green", linewidth=2, label="best so far")
    if (baseline := board.best(baselines=True)) is not None:
        axes.axhline(
            baseline.mean, color="tab:red", linestyle="--", label=f"best baseline ({baseline.label})"
        )
    better = "lower" if board.direction == "minimize" else "higher"
    axes.set(xlabel="graded run", ylabel=f"{board.metric or 'metric'} ({better} is better)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"{view.campaign_id}: {len(values)} graded runs", fontsize=10)
    if not values:
        axes.text(0.5, 0.5, "no graded run", transform=axes.transAxes, ha="center", color="grey")
    axes.legend(fontsize=8, loc="best")
    return png(fig)
