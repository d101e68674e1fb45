"""Projections: leaderboard, kanban, budget and playbook folded from events."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable

from shared.events import (
    BaselineEvaluated,
    BudgetLimits,
    CampaignStarted,
    Direction,
    Event,
    EventRejected,
    HarnessAccepted,
    HarnessRejected,
    HarnessReviewed,
    HarnessTested,
    Lesson,
    LlmCallFinished,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    RunStarted,
    decode,
)
from shared.projections import CampaignView, evolve, snapshot
from shared.replay import fold
from tests.factories import event, small_campaign


def _view(events: Iterable[Event], campaign_id: str = "c1") -> CampaignView:
    return fold(events).campaigns[campaign_id]


def _start(direction: Direction = "minimize", budget: BudgetLimits | None = None) -> Event:
    return event(
        CampaignStarted(
            domain="toy", objective="x", metric="mae", direction=direction, budget=budget or BudgetLimits()
        )
    )


def _trial(pid: str, config: dict, value: float, second: float = 1.0, seed: int = 0) -> list[Event]:
    """A proposal for `config` and its run finishing with `value`."""
    return [
        event(ProposalCreated(proposal_id=pid, config=config, seed=seed), second=second),
        event(RunStarted(run_id=f"r-{pid}", proposal_id=pid, worker="w1"), second=second + 0.25),
        event(RunFinished(run_id=f"r-{pid}", proposal_id=pid, value=value), second=second + 0.5),
    ]


def _runs(pid: str, run_id: str = "r1") -> dict[str, Event]:
    return {
        "started": event(RunStarted(run_id=run_id, proposal_id=pid, worker="w1"), second=2),
        "finished": event(RunFinished(run_id=run_id, proposal_id=pid, value=1.0), second=3),
        "failed": event(RunFailed(run_id=run_id, proposal_id=pid, error="oom"), second=3),
        "analyzed": event(RunAnalyzed(run_id=run_id, proposal_id=pid, verdict="improved"), second=4),
    }


# --- leaderboard ---------------------------------------------------------------------------


def test_minimize_metric_ranks_lowest_mean_first() -> None:
    """With a minimize metric the leaderboard is sorted by mean ascending."""
    events = [_start("minimize"), *_trial("a", {"lr": 1}, 5.0), *_trial("b", {"lr": 2}, 3.0)]
    events += _trial("c", {"lr": 3}, 4.0)
    assert [row.mean for row in _view(events).leaderboard.ranked()] == [3.0, 4.0, 5.0]


def test_maximize_metric_ranks_highest_mean_first() -> None:
    """With a maximize metric the leaderboard is sorted by mean descending."""
    events = [_start("maximize"), *_trial("a", {"lr": 1}, 5.0), *_trial("b", {"lr": 2}, 3.0)]
    events += _trial("c", {"lr": 3}, 4.0)
    assert [row.mean for row in _view(events).leaderboard.ranked()] == [5.0, 4.0, 3.0]


def test_replicates_aggregate_into_one_row() -> None:
    """Proposals with one config but different ids and seeds share a row with n, mean and sample std."""
    values = [2.0, 3.5, 7.25, 4.0]  # binary fractions, so running and batch statistics agree exactly
    events = [_start()]
    for i, value in enumerate(values):
        events += _trial(f"p{i}", {"lr": 0.1, "depth": 3}, value, second=1 + i, seed=i)
    rows = _view(events).leaderboard.ranked()
    assert len(rows) == 1
    row = rows[0]
    assert row.n == len(values)
    assert row.mean == statistics.mean(values)
    assert row.spread == statistics.stdev(values)
    assert row.best == 2.0 and row.best_run_id == "r-p0"
    assert row.run_ids == ["r-p0", "r-p1", "r-p2", "r-p3"]


def test_replicates_match_regardless_of_config_key_order() -> None:
    """Configs equal as dicts but written in another key order are still replicates."""
    events = [_start(), *_trial("a", {"lr": 1, "depth": 2}, 1.0), *_trial("b", {"depth": 2, "lr": 1}, 3.0)]
    rows = _view(events).leaderboard.ranked()
    assert [(row.n, row.mean) for row in rows] == [(2, 2.0)]


def test_baseline_gets_its_own_flagged_row() -> None:
    """A baseline is a separate row flagged as baseline, ranked with the configurations."""
    events = [_start(), event(BaselineEvaluated(name="naive", value=4.0)), *_trial("a", {"lr": 1}, 5.0)]
    board = _view(events).leaderboard
    assert [(row.label, row.baseline) for row in board.ranked()] == [("naive", True), ("lr=1", False)]
    assert board.best().label == "lr=1"
    assert board.best(baselines=True).label == "naive"


def test_each_row_keeps_the_secondary_metrics_of_its_best_result() -> None:
    """Secondary metrics travel with the best result of a row, baselines included, and into the summary."""
    start = event(
        CampaignStarted(
            domain="toy", objective="x", metric="mae", direction="minimize", secondary_metrics=("rmse",)
        )
    )
    events = [
        start,
        event(BaselineEvaluated(name="naive", value=4.0, metrics={"mae": 4.0, "rmse": 6.0})),
        event(ProposalCreated(proposal_id="a", config={"lr": 1}, seed=0), second=1),
        event(RunStarted(run_id="r1", proposal_id="a", worker="w1"), second=1.5),
        event(
            RunFinished(run_id="r1", proposal_id="a", value=3.0, metrics={"mae": 3.0, "rmse": 5.0}), second=2
        ),
        event(ProposalCreated(proposal_id="b", config={"lr": 1}, seed=1), second=3),
        event(RunStarted(run_id="r2", proposal_id="b", worker="w1"), second=3.5),
        event(
            RunFinished(run_id="r2", proposal_id="b", value=3.5, metrics={"mae": 3.5, "rmse": 4.0}), second=4
        ),
    ]
    view = _view(events)
    assert view.leaderboard.secondary == ("rmse",)
    rows = {row.label: row for row in view.leaderboard.ranked()}
    assert rows["lr=1"].best_metrics["rmse"] == 5.0  # of r1, the best by the primary metric
    assert rows["naive"].best_metrics == {"mae": 4.0, "rmse": 6.0}
    assert [row["best_metrics"] for row in snapshot(view)["leaderboard"]["rows"]] == [
        {"rmse": 5.0},
        {"rmse": 6.0},
    ]


def test_run_for_unknown_proposal_is_fenced() -> None:
    """A run-finished whose proposal was never seen holds no attempt: recorded for audit, never counted."""
    late = event(RunFinished(run_id="r9", proposal_id="ghost", value=2.0, wall_seconds=5.0))
    view = _view([_start(), late])
    assert view.leaderboard.ranked() == [] and view.budget.experiments == 0
    assert snapshot(view)["fenced"] == [
        {"event_id": late.event_id, "type": "run-finished", "run_id": "r9", "proposal_id": "ghost",
         "why": "unknown proposal"}
    ]  # fmt: skip


# --- kanban --------------------------------------------------------------------------------


def test_card_moves_through_lifecycle_with_history() -> None:
    """A proposal moves proposed, running, finished, analyzed, recording each event id."""
    created = event(ProposalCreated(proposal_id="p1", config={}))
    runs = _runs("p1")
    events = [created, runs["started"], runs["finished"], runs["analyzed"]]
    card = _view(events).kanban.cards["p1"]
    assert card.state == "analyzed"
    assert [(t.state, t.event_id) for t in card.history] == [
        ("proposed", created.event_id),
        ("running", runs["started"].event_id),
        ("finished", runs["finished"].event_id),
        ("analyzed", runs["analyzed"].event_id),
    ]
    assert card.run_ids == ["r1"]


def test_analyzed_is_terminal() -> None:
    """A run event after analysis does not move an analyzed card."""
    runs = _runs("p1")
    late = event(RunStarted(run_id="r2", proposal_id="p1", worker="w2"), second=9)
    events = [event(ProposalCreated(proposal_id="p1", config={})), *runs.values(), late]
    card = _view(events).kanban.cards["p1"]
    assert card.state == "analyzed"
    assert card.run_ids == ["r1"]


def test_cancelled_is_terminal() -> None:
    """A run event after cancellation does not move a cancelled card."""
    runs = _runs("p1")
    events = [
        event(ProposalCreated(proposal_id="p1", config={})),
        event(ProposalCancelled(proposal_id="p1", reason="dup"), second=1),
        runs["started"],
        runs["finished"],
    ]
    card = _view(events).kanban.cards["p1"]
    assert card.state == "cancelled"
    assert [t.state for t in card.history] == ["proposed", "cancelled"]


def test_columns_group_proposals_by_state() -> None:
    """columns() lists proposal ids under their current state, in creation order."""
    events = [event(ProposalCreated(proposal_id=p, config={"p": p})) for p in ("a", "b", "c", "d")]
    events += [_runs("b", "rb")["started"], _runs("c", "rc")["started"], _runs("c", "rc")["failed"]]
    events += [_runs("d", "rd")["started"]]
    assert _view(events).kanban.columns() == {"proposed": ["a"], "running": ["b", "d"], "failed": ["c"]}


# --- budget --------------------------------------------------------------------------------


def test_budget_counts_spend() -> None:
    """Budget counts finished and failed runs, compute seconds, LLM dollars and tokens, and time left."""
    llm = LlmCallFinished(
        role="r", provider="p", model="m", input_tokens=100, output_tokens=20, usd=0.25, seconds=1
    )
    events = [
        _start(budget=BudgetLimits(max_experiments=5)),
        *(event(ProposalCreated(proposal_id=p, config={"p": p})) for p in ("p1", "p2")),
        _runs("p1", "r1")["started"],
        _runs("p2", "r2")["started"],
        event(RunFinished(run_id="r1", proposal_id="p1", value=1.0, wall_seconds=3.0), second=10),
        event(RunFailed(run_id="r2", proposal_id="p2", error="x", wall_seconds=1.5), second=20),
        event(llm, second=30),
        event(llm, second=42.5),
    ]
    spent = _view(events).budget
    assert (spent.experiments, spent.failed) == (2, 1)
    assert spent.compute_seconds == 4.5
    assert spent.usd == 0.5 and spent.llm_calls == 2
    assert (spent.input_tokens, spent.output_tokens) == (200, 40)
    assert spent.elapsed_seconds == 42.5
    assert spent.experiments_left == 3


def test_experiments_left_is_none_without_limit_and_never_negative() -> None:
    """Without a limit experiments_left is None; past the limit it stays at zero."""
    runs = [e for i in range(3) for e in _trial(f"p{i}", {"lr": i}, 1.0, second=i)]
    assert _view([_start(), *runs]).budget.experiments_left is None
    assert _view([_start(budget=BudgetLimits(max_experiments=2)), *runs]).budget.experiments_left == 0


# --- playbook ------------------------------------------------------------------------------


def test_playbook_keeps_history_and_passes_over_stale_revision() -> None:
    """Revisions accumulate in history; a revision not newer than the current one is passed over."""
    first = event(PlaybookRevised(revision=1, lessons=(Lesson(text="a"),)), second=1)
    lessons = (Lesson(text="a"), Lesson(text="b", run_ids=("r1",)))
    second = event(PlaybookRevised(revision=2, lessons=lessons), second=2)
    stale = event(PlaybookRevised(revision=2, lessons=(Lesson(text="stale"),)), second=3)
    older = event(PlaybookRevised(revision=1, lessons=(), reason="late"), second=4)
    book = _view([first, second, stale, older]).playbook
    assert book.revision == 2
    assert [lesson.text for lesson in book.lessons] == ["a", "b"]
    history = [(rev.revision, rev.event_id) for rev in book.history]
    assert history == [(1, first.event_id), (2, second.event_id)]


# --- harness (phase 2) ---------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def test_harness_is_pending_until_accepted_and_keeps_what_was_tested() -> None:
    """Reviewed and tested leave the harness pending; accepted settles it; the snapshot shows outcomes."""
    tested = HarnessTested(harness_digest=DIGEST, passed=2, outcomes={"write-results": "blocked: read-only"})
    steps = [
        _start(),
        event(HarnessReviewed(harness_digest=DIGEST, verdict="pass"), second=1),
        event(tested, second=2),
    ]
    assert _view(steps).harness == "pending"
    view = _view([*steps, event(HarnessAccepted(harness_digest=DIGEST), second=3)])
    doc = snapshot(view)["harness"]
    assert (doc["status"], doc["digest"]) == ("accepted", DIGEST)
    assert doc["tested"]["outcomes"] == {"write-results": "blocked: read-only"}
    assert doc["review"]["verdict"] == "pass" and doc["reasons"] == []


def test_a_rejected_harness_stays_rejected_with_its_reasons() -> None:
    """harness-rejected is final: a later harness-accepted does not undo it."""
    rejected = HarnessRejected(harness_digest=DIGEST, reasons=("hack read-labels got through",))
    view = _view(
        [_start(), event(rejected, second=1), event(HarnessAccepted(harness_digest=DIGEST), second=2)]
    )
    assert view.harness == "rejected"
    assert snapshot(view)["harness"]["reasons"] == ["hack read-labels got through"]


# --- the lab fold --------------------------------------------------------------------------


def test_unrecognized_event_advances_position_only() -> None:
    """An unrecognized event changes no view but still advances the lab and campaign positions."""
    events = small_campaign(runs=2)
    doc = json.loads(events[-1].model_dump_json())
    doc.update(event_id="future1", type="run-teleported")
    unknown = decode(json.dumps(doc).encode())
    assert not unknown.recognized
    before = snapshot(_view(events))
    lab = fold([*events, unknown])
    after = snapshot(lab.campaigns["c1"])
    assert lab.position == len(events) + 1
    assert after["position"] == before["position"] + 1
    assert after["last_event_id"] == "future1"
    for part in ("leaderboard", "kanban", "budget", "playbook"):
        assert after[part] == before[part]


def test_evolve_keeps_campaigns_apart() -> None:
    """Events of two campaigns fold into two separate views, each with its own position."""
    lab = fold([*small_campaign("c1", runs=1), *small_campaign("c2", runs=2)])
    assert lab.position == 5 + 8
    assert (lab.campaigns["c1"].position, lab.campaigns["c2"].position) == (5, 8)
    assert lab.campaigns["c2"].status == "running"
    assert evolve(lab, small_campaign("c3", runs=0)[0]) is lab


def test_snapshot_is_json_and_deterministic() -> None:
    """A snapshot serializes with json.dumps, and folding the same events twice gives equal snapshots."""
    events = small_campaign(runs=3)
    events.append(event(PlaybookRevised(revision=1, lessons=(Lesson(text="x"),)), second=9))
    events.append(event(ProposalCancelled(proposal_id="p0", reason="done"), second=10))
    first, again = snapshot(_view(events)), snapshot(_view(events))
    text = json.dumps(first)
    assert json.loads(text) == first
    assert first == again
    assert len(first["leaderboard"]["rows"]) == 4


# --- fencing -------------------------------------------------------------------------------


def test_late_result_of_a_cancelled_proposal_is_fenced() -> None:
    """A worker resumed after its proposal was cancelled: its result is kept for audit, not counted."""
    runs = _runs("p1")
    cancelled = event(ProposalCancelled(proposal_id="p1", reason="requeue"), second=2.5)
    events = [_start(), event(ProposalCreated(proposal_id="p1", config={})), runs["started"], cancelled]
    view = _view([*events, runs["finished"], runs["analyzed"]])
    assert view.leaderboard.ranked() == [] and view.budget.experiments == 0
    assert view.kanban.cards["p1"].state == "cancelled"
    assert [(f.event_id, f.why) for f in view.fenced] == [
        (runs["finished"].event_id, "cancelled"),
        (runs["analyzed"].event_id, "cancelled"),
    ]


def test_late_result_of_a_superseded_attempt_is_fenced() -> None:
    """Only the latest attempt of a redelivered proposal counts; the first attempt's result is fenced."""
    first, second = _runs("p1", "p1-1"), _runs("p1", "p1-2")
    events = [_start(), event(ProposalCreated(proposal_id="p1", config={})), first["started"]]
    events += [second["started"], first["finished"], second["finished"]]
    view = _view(events)
    assert view.leaderboard.ranked()[0].run_ids == ["p1-2"] and view.budget.experiments == 1
    assert [(f.run_id, f.why) for f in view.fenced] == [("p1-1", "superseded by p1-2")]
    assert view.holds("p1", "p1-2") and not view.holds("p1", "p1-1")


def test_a_late_result_of_a_dead_lettered_proposal_is_fenced() -> None:
    """A rejection naming a proposal-created event kills its card; a result after that is not counted."""
    created = event(ProposalCreated(proposal_id="p1", config={}))
    runs = _runs("p1")
    rejected = EventRejected(
        reason="handler failed", subject="alphalab.events.c1.proposal-created", size=1,
        sha256="sha256:" + "0" * 64, rejected_by="worker", event_id=created.event_id,
    )  # fmt: skip
    view = _view([_start(), created, runs["started"], event(rejected, second=2.5), runs["finished"]])
    assert view.kanban.cards["p1"].state == "dead" and view.leaderboard.ranked() == []
    assert [f.why for f in view.fenced] == ["dead-lettered"]
