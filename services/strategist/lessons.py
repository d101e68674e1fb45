"""Playbook lessons derived from a campaign's results, each citing the runs that support it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from statistics import mean

from services.strategist.search import Outcome, SpaceParam, importances
from shared.events import Lesson
from shared.projections import CampaignView

__all__ = ["derive_lessons", "outcomes"]


def outcomes(view: CampaignView) -> list[tuple[str, Outcome]]:
    """Every proposal's configuration and how it went, by proposal id, in creation order."""
    graded = {g.proposal_id: g.value for g in view.leaderboard.history}
    result = []
    for pid, card in view.kanban.cards.items():
        config = view.leaderboard.config_of(pid) or {}
        if pid in graded:
            result.append((pid, Outcome(config, graded[pid])))
        elif any(t.state == "failed" for t in card.history):
            result.append((pid, Outcome(config, None, failed=True)))
        elif card.state not in {"cancelled", "dead"}:  # closed without a result: tells nothing
            result.append((pid, Outcome(config, None)))
    return result


def derive_lessons(view: CampaignView, space: Sequence[SpaceParam]) -> tuple[Lesson, ...]:
    board = view.leaderboard
    runs_of = {g.proposal_id: g.run_id for g in board.history}
    tried = outcomes(view)
    lessons = [
        *_versus_baselines(view),
        *_by_family(view, tried, runs_of),
        *_failures(view, tried),
        *_importance(view, tried, space, runs_of),
    ]
    return tuple(lessons)


def _versus_baselines(view: CampaignView) -> list[Lesson]:
    board = view.leaderboard
    baseline, best = board.best(baselines=True), board.declared()
    if baseline is None or best is None:
        return []
    winners = [r for r in board.ranked() if not r.baseline and board.better(r.mean, baseline.mean)]
    if not winners:
        return [
            Lesson(
                text=f"No configuration beats the best baseline ({baseline.label}, {baseline.mean:.4g}) yet."
            )
        ]
    gain = board.improvement(best, over=baseline) or 0.0
    status = (
        f"the confirmed best ({best.label})"
        if best is board.champion()
        else f"the best so far, not yet confirmed by replicates ({best.label}),"
    )
    return [
        Lesson(
            text=f"{len(winners)} configuration(s) beat the best baseline ({baseline.label}, "
            f"{baseline.mean:.4g}); {status} by {gain:.1f}% "
            f"({best.mean:.4g} ± {best.spread:.2g} over {best.n} run(s)).",
            run_ids=tuple(run for r in winners[:3] for run in r.run_ids[:2]),
        )
    ]


def _by_family(view: CampaignView, tried: list[tuple[str, Outcome]], runs_of: dict[str, str]) -> list[Lesson]:
    """Which model family is strongest, when the space has a `model` choice."""
    values: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for pid, outcome in tried:
        family = outcome.config.get("model")
        if family is not None and outcome.value is not None:
            values[str(family)].append((outcome.value, runs_of[pid]))
    if len(values) < 2:
        return []
    pick = min if view.leaderboard.direction == "minimize" else max
    best = {family: pick(results) for family, results in values.items()}
    ranked = sorted(best, key=lambda f: best[f][0], reverse=view.leaderboard.direction == "maximize")
    others = ", ".join(f"{f} {best[f][0]:.4g}" for f in ranked[1:])
    top = values[ranked[0]]
    return [
        Lesson(
            text=f"{ranked[0]} is the strongest model family so far by its best single run, unconfirmed "
            f"({best[ranked[0]][0]:.4g}, mean {mean(v for v, _ in top):.4g} over {len(top)} run(s)); "
            f"others: {others}.",
            run_ids=tuple(best[f][1] for f in ranked),
        )
    ]


def _failures(view: CampaignView, tried: list[tuple[str, Outcome]]) -> list[Lesson]:
    failed = [(pid, o) for pid, o in tried if o.failed]
    if not failed:
        return []
    by_family: dict[str, list[str]] = defaultdict(list)
    for pid, outcome in failed:
        by_family[str(outcome.config.get("model", "any"))].append(pid)
    parts = ", ".join(f"{family}: {len(pids)}" for family, pids in sorted(by_family.items()))
    failed_runs = tuple(run for pid, _ in failed for run in view.kanban.cards[pid].run_ids[-1:])
    return [Lesson(text=f"{len(failed)} run(s) failed ({parts}); avoid those regions.", run_ids=failed_runs)]


def _importance(
    view: CampaignView, tried: list[tuple[str, Outcome]], space: Sequence[SpaceParam], runs_of: dict[str, str]
) -> list[Lesson]:
    scores = importances(space, [o for _, o in tried], view.leaderboard.direction)
    top = sorted(scores.items(), key=lambda item: -item[1])[:3]
    if not top:
        return []
    evidence = tuple(runs_of[pid] for pid, o in tried if o.value is not None)
    listed = ", ".join(f"{name} ({score:.2f})" for name, score in top)
    return [Lesson(text=f"Most influential parameters so far: {listed}.", run_ids=evidence[-6:])]
