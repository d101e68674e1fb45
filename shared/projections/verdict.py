"""A run's analysis: how its graded result compares with the best before it (one judge for all callers).

The worker judges its own run right after the result; the Strategist judges a result whose analysis
never came (its worker died in between). Both publish it under the id `<run>-analyzed`, so whichever
is first wins and the other is deduplicated; both must therefore reach the same verdict.
"""

from __future__ import annotations

from typing import Literal

from shared.events import RunAnalyzed
from shared.projections.leaderboard import Leaderboard

__all__ = ["UNCHANGED_WITHIN", "judge"]

UNCHANGED_WITHIN = 0.01  # a result within 1% of the best before it is "unchanged"


def judge(board: Leaderboard, run_id: str, proposal_id: str, error: str | None = None) -> RunAnalyzed:
    """The analysis of `run_id`: invalid if it failed (`error`) or has no graded result, else its value
    against the best graded value of every other run."""
    graded = next((g for g in board.history if g.run_id == run_id), None)
    if error is not None or graded is None:
        summary = error if error is not None else "no graded result"
        return RunAnalyzed(run_id=run_id, proposal_id=proposal_id, verdict="invalid", summary=summary)
    earlier = [g.value for g in board.history if g.run_id != run_id]
    best = (min if board.direction == "minimize" else max)(earlier) if earlier else None
    verdict: Literal["improved", "unchanged", "worse"] = (
        "improved"
        if best is None or board.better(graded.value, best)
        else ("unchanged" if abs(graded.value - best) <= UNCHANGED_WITHIN * abs(best) else "worse")
    )
    summary = f"{board.metric} {graded.value:.4g}" + (f" vs best {best:.4g}" if best is not None else "")
    return RunAnalyzed(run_id=run_id, proposal_id=proposal_id, verdict=verdict, summary=summary)
