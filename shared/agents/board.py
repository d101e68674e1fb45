"""The board an agent reads (`read_board`): a campaign's state as text, the same for every role.

Budget and its stage, the direction-aware leaderboard with mean ± spread (n) and code digests, the
open experiments, the latest failures with their reasons, the playbook and the search space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.agents.tools import Arguments, Tool, ToolOutput
from shared.domain import Domain
from shared.projections import CampaignView

__all__ = ["OPEN", "board", "board_tool", "stage"]

OPEN = frozenset({"proposed", "running", "finished", "failed"})  # not yet analyzed or cancelled


class _NoArgs(Arguments):
    pass


def board_tool(view: Callable[[], CampaignView], domain: Domain) -> Tool[_NoArgs]:
    """`read_board` over the live view (`view()` is read at each call)."""

    async def read_board(_: _NoArgs) -> ToolOutput:
        return ToolOutput(board(view(), domain))

    description = "The leaderboard, open experiments, recent failures, playbook and budget."
    return Tool("read_board", description, _NoArgs, read_board)


def stage(view: CampaignView) -> str:
    """The reference's budget stages, by the share of the experiment budget left."""
    limit = view.budget.limits.max_experiments
    if limit is None:
        return "explore: try broadly different ideas"
    left = view.proposals_left / limit
    if left > 0.4:
        return "explore: try broadly different ideas (model families, features, code changes)"
    if left > 0.2:
        return "combine: combine what worked into new candidates"
    if left > 0.1:
        return "refine: small changes to the best candidates"
    return "final: only the most promising refinements; nothing risky"


def board(view: CampaignView, domain: Domain) -> str:
    """The board as the model reads it: budget, stage, leaderboard, open work, failures, playbook."""
    manifest, spent, book = domain.manifest, view.budget, view.playbook
    lines = [f"Objective: {manifest.objective.strip()}"]
    better = "lower" if manifest.metric.direction == "minimize" else "higher"
    lines.append(f"Metric: {manifest.metric.name} ({manifest.metric.direction}: {better} is better)")
    limits = spent.limits
    budget = [f"experiments {len(view.kanban.cards)} proposed, {view.results} with results"]
    if limits.max_experiments is not None:
        budget.append(f"room for {view.proposals_left} more of {limits.max_experiments}")
    if limits.max_usd is not None:
        budget.append(f"USD {spent.usd:.4f} of {limits.max_usd:g} spent")
    if limits.max_wall_seconds is not None:
        budget.append(f"{spent.elapsed_seconds:.0f} s of {limits.max_wall_seconds:g} s elapsed")
    lines += [f"Budget: {'; '.join(budget)}", f"Stage: {stage(view)}", "", _leaderboard(view)]
    lines += ["", _open_work(view), "", _failures(view), "", "Playbook:"]
    lines += [f"- {lesson.text} [{', '.join(lesson.run_ids)}]" for lesson in book.lessons] or ["(empty)"]
    lines += ["", "Search space:", *(_param(p) for p in manifest.search_space)]
    lines.append(f"Candidate files (base): {', '.join(domain.candidate_files())}")
    return "\n".join(lines)


def _leaderboard(view: CampaignView) -> str:
    board = view.leaderboard
    champion = board.champion()
    lines = ["Leaderboard (best first; mean ± spread (runs)):"]
    for rank, row in enumerate(board.ranked()[:15], start=1):
        what = f"baseline {row.label}" if row.baseline else row.label
        mark = " [best, confirmed]" if row is champion else ""
        code = f" code={row.code_digest}" if row.code_digest else ""
        runs = f" runs {', '.join(row.run_ids[-3:])}" if row.run_ids else ""
        lines.append(f"{rank}. {what}: {row.mean:.5g} ± {row.spread:.2g} ({row.n}){mark}{runs}{code}")
    return "\n".join(lines) if len(lines) > 1 else "Leaderboard: no results yet"


def _open_work(view: CampaignView) -> str:
    open_cards = [(pid, card) for pid, card in view.kanban.cards.items() if card.state in OPEN]
    lines = [f"- {pid}: {card.state}" for pid, card in open_cards]
    return "\n".join(["Open experiments:", *lines]) if lines else "Open experiments: none"


def _failures(view: CampaignView) -> str:
    lines = [f"- {run_id}: {error[:300]}" for run_id, error in view.run_errors[-8:]]
    return "\n".join(["Recent failures:", *lines]) if lines else "Recent failures: none"


def _param(p: Any) -> str:
    span = f"one of {list(p.choices)}" if p.kind == "categorical" else f"{p.kind} in [{p.low}, {p.high}]"
    span += " (log scale)" if p.log else ""
    when = f" when {p.when}" if p.when else ""
    return f"- {p.name}: {span}{when}"
