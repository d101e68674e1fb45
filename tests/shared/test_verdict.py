"""The one judge of a run's result, shared by the worker and the Strategist."""

from __future__ import annotations

from shared.events import CampaignStarted, ProposalCreated, RunFinished, RunStarted
from shared.projections.verdict import judge
from shared.replay import fold
from tests.factories import event


def _board(*values: float):  # type: ignore[no-untyped-def]
    events = [event(CampaignStarted(domain="t", objective="o", metric="mae", direction="minimize"))]
    for i, value in enumerate(values, start=1):
        events += [
            event(ProposalCreated(proposal_id=f"p{i}", config={"i": i}), second=i),
            event(RunStarted(run_id=f"r{i}", proposal_id=f"p{i}", worker="w"), second=i + 0.2),
            event(RunFinished(run_id=f"r{i}", proposal_id=f"p{i}", value=value), second=i + 0.5),
        ]
    return fold(events).campaigns["c1"].leaderboard


def test_a_result_is_judged_against_the_best_of_the_other_runs() -> None:
    """Better is improved, within 1% unchanged, else worse; the first result is improved."""
    board = _board(5.0, 4.0, 4.02, 6.0)
    verdicts = [judge(board, f"r{i}", f"p{i}").verdict for i in range(1, 5)]
    assert verdicts == ["worse", "improved", "unchanged", "worse"]
    assert judge(_board(5.0), "r1", "p1").summary == "mae 5"
    assert judge(board, "r2", "p2").summary == "mae 4 vs best 4.02"


def test_a_failed_or_ungraded_run_is_invalid() -> None:
    """A failure's error, or the lack of a graded result, makes the analysis invalid."""
    board = _board(5.0)
    failed = judge(board, "r1", "p1", "oom")
    assert (failed.verdict, failed.summary) == ("invalid", "oom")
    assert judge(board, "r9", "p9").summary == "no graded result"
