"""The leaderboard's champion: a best is declared only after replicates beat the incumbent beyond noise."""

from __future__ import annotations

from shared.events import CampaignStarted, Direction, Event, ProposalCreated, RunFinished, RunStarted
from shared.projections import snapshot
from shared.projections.leaderboard import REPLICATES, Leaderboard, config_key
from shared.replay import fold
from tests.factories import event

A, B = {"lr": 1}, {"lr": 2}


def _board(*runs: tuple[dict, float], direction: Direction = "minimize") -> Leaderboard:
    return _fold(*runs, direction=direction).leaderboard


def _fold(*runs: tuple[dict, float], direction: Direction = "minimize"):  # type: ignore[no-untyped-def]
    return fold(_events(*runs, direction=direction)).campaigns["c1"]


def _events(*runs: tuple[dict, float], direction: Direction = "minimize") -> list[Event]:
    """A campaign start, then one proposal and its graded run per (config, value), run ids r1, r2, ..."""
    events = [event(CampaignStarted(domain="t", objective="o", metric="mae", direction=direction))]
    for i, (config, value) in enumerate(runs, start=1):
        events += [
            event(ProposalCreated(proposal_id=f"p{i}", config=config, seed=i), second=i),
            event(RunStarted(run_id=f"r{i}", proposal_id=f"p{i}", worker="w"), second=i + 0.25),
            event(RunFinished(run_id=f"r{i}", proposal_id=f"p{i}", value=value), second=i + 0.5),
        ]
    return events


# A's three runs: mean 5.0, sample spread 0.5 (values are binary fractions, so the arithmetic is exact).
INCUMBENT = [(A, 5.0), (A, 5.5), (A, 4.5)]


def test_the_first_configuration_with_enough_replicates_becomes_champion() -> None:
    """No champion before REPLICATES runs of one configuration; the first to get them is declared."""
    assert REPLICATES == 3
    board = _board(*INCUMBENT[:2], (B, 1.0))
    assert board.champion() is None and board.declared().key == board.best().key
    board = _board(*INCUMBENT)
    assert board.champion().config == A and [p.run_id for p in board.promotions] == ["r3"]


def test_a_lucky_single_run_does_not_become_champion() -> None:
    """One run far better than the champion tops the ranking but is not declared the best."""
    board = _board(*INCUMBENT, (B, 1.0))
    assert board.best().config == B
    assert board.champion().config == A and board.declared().config == A


def test_a_replicated_challenger_beyond_the_spread_is_promoted() -> None:
    """Three runs of B averaging 1.0 better than A, with spreads of at most 0.5, make B the champion."""
    board = _board(*INCUMBENT, (B, 4.0), (B, 4.25), (B, 3.75))
    assert board.champion().config == B
    assert [(p.run_id, p.mean, p.n) for p in board.promotions] == [("r3", 5.0, 3), ("r6", 4.0, 3)]


def test_a_challenger_within_the_spread_is_not_promoted() -> None:
    """Three runs of B beating A's mean by 0.25, less than A's spread of 0.5, leave A champion."""
    board = _board(*INCUMBENT, (B, 4.75), (B, 4.5), (B, 5.0))
    assert board.best().config == B
    assert board.champion().config == A and len(board.promotions) == 1


def test_the_challengers_own_spread_counts_too() -> None:
    """A challenger ahead by 1.0 but with a spread above 1.0 itself is not promoted."""
    board = _board(*INCUMBENT, (B, 2.0), (B, 6.0), (B, 4.0))  # mean 4.0, spread 2.0
    assert board.champion().config == A


def test_a_challenger_is_promoted_once_a_later_replicate_settles_it() -> None:
    """A challenger held back at three runs is checked again when its fourth run arrives."""
    board = _board(*INCUMBENT, (B, 4.75), (B, 4.5), (B, 5.0), (B, 1.75))  # mean 4.0, spread 1.51
    assert board.champion().config == A
    board = _board(*INCUMBENT, (B, 4.5), (B, 4.5), (B, 4.5))  # ahead by exactly the spread: not more
    assert board.champion().config == A
    board = _board(*INCUMBENT, (B, 4.5), (B, 4.5), (B, 4.5), (B, 4.0))  # mean 4.375, spread 0.25
    assert board.champion().config == B and board.promotions[-1].run_id == "r7"


def test_maximize_promotes_a_higher_mean() -> None:
    """With a maximize metric the challenger must be higher by more than the spread."""
    higher = [(B, 6.0), (B, 6.25), (B, 5.75)]
    assert _board(*INCUMBENT, *higher, direction="maximize").champion().config == B
    assert _board(*INCUMBENT, *higher, direction="minimize").champion().config == A


def test_runs_since_best_counts_from_the_last_promotion() -> None:
    """Lucky single runs do not reset the patience count; a promotion does."""
    assert _board((A, 5.0), (B, 1.0)).runs_since_best() == 2  # no champion yet: every graded run
    lucky = [({"lr": 10 + i}, 1.0 - i / 8) for i in range(4)]
    assert _board(*INCUMBENT, *lucky).runs_since_best() == 4
    assert _board(*INCUMBENT, *lucky, (B, 4.0), (B, 4.25), (B, 3.75)).runs_since_best() == 0


def test_contenders_are_unreplicated_rows_ahead_of_the_champion() -> None:
    """The rows to replicate: those ahead of the champion with too few runs, or the top row with none."""
    assert [r.config for r in _board((A, 5.0), (B, 4.0)).contenders()] == [B]
    board = _board(*INCUMBENT, (B, 4.0), ({"lr": 3}, 6.0), ({"lr": 4}, 4.5))
    assert [r.config for r in board.contenders()] == [B, {"lr": 4}]


def test_snapshot_names_the_champion_and_its_promotions() -> None:
    """The snapshot carries the champion with mean, spread and n, and the promotion run ids."""
    doc = snapshot(_fold(*INCUMBENT, (B, 1.0)))["leaderboard"]
    assert doc["champion"]["label"] == "lr=1"
    assert (doc["champion"]["mean"], doc["champion"]["spread"], doc["champion"]["n"]) == (5.0, 0.5, 3)
    assert [p["run_id"] for p in doc["promotions"]] == ["r3"]
    assert doc["runs_since_best"] == 1 and doc["rows"][0]["label"] == "lr=2"


def test_two_equal_values_settle_a_configuration_and_make_it_champion() -> None:
    """A second run with the same value shows the seed does not matter: no third replicate is needed."""
    board = _board((A, 5.0), (A, 5.0))
    assert board.settled(board.rows[config_key(A)])
    assert board.champion() is not None and board.champion().n == 2  # type: ignore[union-attr]
    assert board.contenders() == []


def test_two_different_values_do_not_settle_a_configuration() -> None:
    """With a spread, a configuration still needs REPLICATES runs."""
    board = _board((A, 5.0), (A, 5.5))
    assert not board.settled(board.rows[config_key(A)]) and board.champion() is None
    assert [row.key for row in board.contenders()] == [config_key(A)]


def test_one_run_settles_a_configuration_of_a_deterministic_campaign() -> None:
    """A campaign started deterministic declares its best configuration after one run each."""
    events = _events((A, 5.0), (B, 4.0))
    events[0] = event(
        CampaignStarted(domain="t", objective="o", metric="mae", direction="minimize", deterministic=True)
    )
    view = fold(events).campaigns["c1"]
    assert [p.key for p in view.leaderboard.promotions] == [config_key(A), config_key(B)]
    assert view.leaderboard.contenders() == []
    assert snapshot(view)["leaderboard"]["deterministic"] is True
