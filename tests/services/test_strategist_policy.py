"""The builtin Strategist's decisions, as a pure function of a campaign's events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.strategist import search
from services.strategist.lessons import outcomes
from services.strategist.policy import ANALYSIS_GRACE_S, decide
from services.strategist.search import Outcome, window
from shared.events import (
    BaselineEvaluated,
    BudgetLimits,
    CampaignFinished,
    CampaignPaused,
    CampaignResumed,
    CampaignStarted,
    CampaignStopRequested,
    EventRejected,
    ExplorationFinished,
    HarnessAccepted,
    HarnessRejected,
    HarnessTested,
    HintGiven,
    InterventionIssued,
    Payload,
    PhaseFinished,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    ProposalSubmitted,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    RunStarted,
    SubmissionRefused,
)
from shared.projections import CampaignView, Lab, evolve, snapshot
from shared.projections.verdict import judge
from tests.factories import EPOCH, event


@dataclass
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    when: dict[str, list[Any]] = field(default_factory=dict)


SPACE = [Param("model", "categorical", choices=["a", "b"]), Param("x", "float", 0.0, 1.0)]
DIGEST = "sha256:" + "0" * 64


def _view(
    *payloads: Payload, budget: BudgetLimits | None = None, ready: tuple[Payload, ...] | None = None
) -> CampaignView:
    """A campaign after `ready` (by default: explored, with its harness accepted), then `payloads`."""
    start = CampaignStarted(
        domain="toy",
        objective="o",
        metric="mae",
        direction="minimize",
        budget=budget or BudgetLimits(max_experiments=10),
    )
    if ready is None:
        ready = (ExplorationFinished(), HarnessAccepted(harness_digest=DIGEST))
    lab = Lab()
    for second, payload in enumerate([start, BaselineEvaluated(name="naive", value=10.0), *ready, *payloads]):
        lab = evolve(lab, event(payload, "c1", second))
    return lab.campaigns["c1"]


def _completed(pid: str, value: float, config: dict[str, Any] | None = None) -> list[Payload]:
    run = f"{pid}-1"
    return [
        ProposalCreated(proposal_id=pid, config=config or {"model": "a", "x": value / 100}),
        RunStarted(run_id=run, proposal_id=pid, worker="w"),
        RunFinished(run_id=run, proposal_id=pid, value=value),
        RunAnalyzed(run_id=run, proposal_id=pid, verdict="improved"),
    ]


def test_nothing_is_proposed_before_exploration_finishes() -> None:
    """Proposals wait for the explorer (and its baselines)."""
    lab = evolve(
        Lab(), event(CampaignStarted(domain="toy", objective="o", metric="m", direction="minimize"), "c1")
    )
    assert decide(lab.campaigns["c1"], SPACE, workers=2, now=EPOCH) == []


def test_first_decision_keeps_every_worker_busy_plus_one() -> None:
    """With two idle workers, the first batch is three proposals after the phase starts."""
    decisions = decide(_view(), SPACE, workers=2, now=EPOCH)
    assert decisions[0].key == "phase-experiment-started"
    proposals = [d.payload for d in decisions if isinstance(d.payload, ProposalCreated)]
    assert [p.proposal_id for p in proposals] == ["p001", "p002", "p003"]
    assert proposals[0].config == {} and proposals[0].rationale.startswith("anchor")  # the defaults first
    assert all(set(p.config) == {"model", "x"} for p in proposals[1:])


def test_open_proposals_count_against_the_batch() -> None:
    """Three open proposals and two workers: nothing more to propose."""
    open_ones = [ProposalCreated(proposal_id=f"p00{i}", config={"model": "a", "x": 0.1}) for i in (1, 2, 3)]
    assert decide(_view(*open_ones), SPACE, workers=2, now=EPOCH) == []


def test_experiment_budget_finishes_the_campaign_once_all_ran() -> None:
    """When the budget is spent and nothing is open, the campaign finishes naming the best run."""
    payloads = [p for i, v in enumerate([3.0, 2.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads, budget=BudgetLimits(max_experiments=2)), SPACE, workers=1, now=EPOCH)
    finished = [d.payload for d in decisions if isinstance(d.payload, CampaignFinished)]
    assert len(finished) == 1 and "experiment budget" in finished[0].reason
    assert finished[0].best_run_id == "p002-1"


def test_time_budget_cancels_open_proposals_and_finishes() -> None:
    """Past the wall-clock budget, open proposals are cancelled and the campaign ends."""
    view = _view(
        ProposalCreated(proposal_id="p001", config={"model": "a", "x": 0.1}),
        budget=BudgetLimits(max_wall_seconds=60),
    )
    decisions = decide(view, SPACE, workers=1, now=EPOCH + timedelta(seconds=61))
    kinds = [type(d.payload).__name__ for d in decisions]
    assert kinds[0] == "ProposalCancelled" and kinds[-1] == "CampaignFinished"


def test_patience_stops_a_campaign_that_stopped_improving() -> None:
    """No new best in `patience` graded runs ends the campaign."""
    payloads = [p for i, v in enumerate([1.0, 2.0, 3.0, 4.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads, budget=BudgetLimits(patience=3)), SPACE, workers=1, now=EPOCH)
    assert any(
        isinstance(d.payload, CampaignFinished) and "no new best" in d.payload.reason for d in decisions
    )


def test_requeue_cancels_the_stuck_proposal_and_proposes_its_config_again() -> None:
    """A requeue order becomes a cancellation plus a replacement with the same configuration."""
    view = _view(
        ProposalCreated(proposal_id="p001", config={"model": "b", "x": 0.5}),
        RunStarted(run_id="p001-1", proposal_id="p001", worker="w"),
        InterventionIssued(action="requeue", target="p001", reason="silent worker"),
    )
    decisions = decide(view, SPACE, workers=0, now=EPOCH)
    cancelled = [d.payload for d in decisions if isinstance(d.payload, ProposalCancelled)]
    replacement = [
        d.payload for d in decisions if isinstance(d.payload, ProposalCreated) and d.payload.replaces
    ]
    assert [c.proposal_id for c in cancelled] == ["p001"]
    assert replacement[0].config == {"model": "b", "x": 0.5} and replacement[0].replaces == "p001"


def test_playbook_is_revised_after_a_batch_of_results_citing_runs() -> None:
    """Three results give revision 1, whose lessons cite run ids."""
    payloads = [p for i, v in enumerate([3.0, 2.0, 12.0]) for p in _completed(f"p00{i + 1}", v)]
    decisions = decide(_view(*payloads), SPACE, workers=1, now=EPOCH)
    revised = [d.payload for d in decisions if isinstance(d.payload, PlaybookRevised)]
    assert len(revised) == 1 and revised[0].revision == 1
    assert any("beat the best baseline" in lesson.text for lesson in revised[0].lessons)
    assert all(lesson.run_ids for lesson in revised[0].lessons)


def _confirmed(value: float, config: dict[str, Any], first: int = 1) -> list[Payload]:
    """REPLICATES runs of one configuration, all graded `value` (so it becomes the champion)."""
    return [p for i in range(first, first + 3) for p in _completed(f"p{i:03d}", value, config)]


def _proposed(view: CampaignView, workers: int = 1) -> list[ProposalCreated]:
    decisions = decide(view, SPACE, workers=workers, now=EPOCH)
    return [d.payload for d in decisions if isinstance(d.payload, ProposalCreated)]


def test_the_first_graded_run_is_replicated_before_exploring_further() -> None:
    """With no champion yet, the best single run is replicated with new seeds before anything new."""
    proposed = _proposed(_view(*_completed("p001", 3.0)))
    assert [p.config for p in proposed] == [{"model": "a", "x": 0.03}] * 2
    assert len({p.seed for p in proposed}) == 2
    assert all(p.rationale.startswith("confirm") for p in proposed)


def test_a_run_that_beats_the_champion_is_replicated() -> None:
    """A single run better than the champion gets replicates until it has REPLICATES runs in all."""
    champion = {"model": "a", "x": 0.5}
    view = _view(*_confirmed(5.0, champion), *_completed("p004", 4.0, {"model": "b", "x": 0.4}))
    assert view.leaderboard.champion() is not None
    proposed = _proposed(view)
    assert [p.config for p in proposed] == [{"model": "b", "x": 0.4}] * 2
    assert [p.proposal_id for p in proposed] == ["p005", "p006"]


def test_a_run_worse_than_the_champion_is_not_replicated() -> None:
    """A single run worse than the champion leaves the next proposals to exploration."""
    view = _view(
        *_confirmed(5.0, {"model": "a", "x": 0.5}), *_completed("p004", 6.0, {"model": "b", "x": 0.6})
    )
    proposed = _proposed(view)
    assert proposed and not any(p.rationale.startswith("confirm") for p in proposed)


def test_open_replicates_count_as_runs_to_come() -> None:
    """A contender with one run and one open replicate gets one more, then exploration fills the batch."""
    contender = {"model": "b", "x": 0.4}
    view = _view(
        *_confirmed(5.0, {"model": "a", "x": 0.5}),
        *_completed("p004", 4.0, contender),
        ProposalCreated(proposal_id="p005", config=contender),
    )
    proposed = _proposed(view, workers=2)
    assert [p.config == contender for p in proposed] == [True, False]


def test_a_configuration_with_a_failed_replicate_is_not_retried() -> None:
    """A contender whose replicate failed is not replicated again."""
    contender = {"model": "b", "x": 0.4}
    view = _view(
        *_confirmed(5.0, {"model": "a", "x": 0.5}),
        *_completed("p004", 4.0, contender),
        ProposalCreated(proposal_id="p005", config=contender),
        RunStarted(run_id="p005-1", proposal_id="p005", worker="w"),
        RunFailed(run_id="p005-1", proposal_id="p005", error="oom"),
        RunAnalyzed(run_id="p005-1", proposal_id="p005", verdict="invalid"),
    )
    assert all(p.config != contender for p in _proposed(view))


def test_campaign_finished_names_the_champion_not_a_lucky_run() -> None:
    """At the end, the best run is the champion's, even if an unreplicated run scored better."""
    view = _view(
        *_confirmed(5.0, {"model": "a", "x": 0.5}),
        *_completed("p004", 1.0, {"model": "b", "x": 0.1}),
        budget=BudgetLimits(max_experiments=4),
    )
    decisions = decide(view, SPACE, workers=1, now=EPOCH)
    finished = [d.payload for d in decisions if isinstance(d.payload, CampaignFinished)]
    assert finished[0].best_run_id in {"p001-1", "p002-1", "p003-1"}
    lessons = [d.payload for d in decisions if isinstance(d.payload, PlaybookRevised)][0].lessons
    assert any("the confirmed best (model=a, x=0.5)" in lesson.text for lesson in lessons)


def test_nothing_is_proposed_until_the_harness_is_accepted() -> None:
    """An explored campaign whose harness is still being tested proposes nothing."""
    tested = HarnessTested(harness_digest=DIGEST, passed=12)
    assert decide(_view(ready=(ExplorationFinished(), tested)), SPACE, workers=2, now=EPOCH) == []
    accepted_only = (HarnessAccepted(harness_digest=DIGEST),)
    assert decide(_view(ready=accepted_only), SPACE, workers=2, now=EPOCH) == []


def test_a_rejected_harness_finishes_the_campaign_naming_the_reasons() -> None:
    """harness-rejected ends the campaign, explored or not, with the reasons in its reason."""
    rejected = HarnessRejected(harness_digest=DIGEST, reasons=("hack write-results got through", "no grade"))
    for ready in [(rejected,), (ExplorationFinished(), rejected)]:
        decisions = decide(_view(ready=ready), SPACE, workers=2, now=EPOCH)
        assert not any(isinstance(d.payload, ProposalCreated) for d in decisions)
        finished = decisions[-1].payload
        assert isinstance(finished, CampaignFinished)
        assert finished.reason == "harness rejected: hack write-results got through; no grade"


def test_time_budget_ends_a_campaign_whose_exploration_never_finished() -> None:
    """A campaign stuck before exploration still stops when its time is up."""
    start = CampaignStarted(
        domain="toy",
        objective="o",
        metric="m",
        direction="minimize",
        budget=BudgetLimits(max_wall_seconds=60),
    )
    lab = evolve(Lab(), event(start, "c1"))
    decisions = decide(lab.campaigns["c1"], SPACE, workers=1, now=EPOCH + timedelta(seconds=61))
    assert (
        isinstance(decisions[-1].payload, CampaignFinished) and "time budget" in decisions[-1].payload.reason
    )


def test_seeds_are_unique_among_a_configurations_proposals_through_requeues_and_confirmations() -> None:
    """A requeue and a later confirmation replicate of the same configuration never share a seed."""
    contender = {"model": "a", "x": 0.03}
    view = _view(
        *_completed("p001", 3.0, contender),
        ProposalCreated(proposal_id="p002", config=contender, seed=2),
        RunStarted(run_id="p002-1", proposal_id="p002", worker="w"),
        ProposalCreated(proposal_id="p003", config=contender, seed=3),
        InterventionIssued(action="cancel", target="p003", reason="overtime"),
        InterventionIssued(action="requeue", target="p002", reason="silent worker"),
    )
    lab, seeds = Lab(campaigns={"c1": view}), [0, 2, 3]
    for second in range(100, 103):  # the orders, then the confirmation they leave wanted
        for decision in decide(lab.campaigns["c1"], SPACE, workers=1, now=EPOCH):
            lab = evolve(lab, event(decision.payload, "c1", second))
            if isinstance(decision.payload, ProposalCreated) and decision.payload.config == contender:
                seeds.append(decision.payload.seed)
    assert len(seeds) == 5  # p001 to p003, the requeue of p002, one more replicate
    assert len(set(seeds)) == len(seeds)


def test_a_failed_exploration_finishes_the_campaign_at_once_with_its_reason() -> None:
    """The explorer's failed explore phase ends the campaign, without waiting for a harness."""
    failed = PhaseFinished(phase="explore", outcome="failed: data.csv: no such file")
    view = _view(failed, ready=())
    finished = [d.payload for d in decide(view, SPACE, workers=1, now=EPOCH)][-1]
    assert isinstance(finished, CampaignFinished)
    assert finished.reason == "exploration failed: data.csv: no such file"
    assert view.failure == "data.csv: no such file" and not view.experimented


def test_a_configuration_settled_by_two_equal_values_is_not_replicated_again() -> None:
    """Two runs with the same value settle a configuration: the next proposals explore instead."""
    config = {"model": "a", "x": 0.03}
    view = _view(*_completed("p001", 3.0, config), *_completed("p002", 3.0, config))
    proposed = _proposed(view, workers=2)
    assert proposed and all(p.config != config for p in proposed)


def test_a_result_whose_analysis_was_lost_is_analyzed_by_the_strategist() -> None:
    """A finished card left without its worker's analysis gets the same judge's verdict, same id."""
    run = [ProposalCreated(proposal_id="p001", config={"model": "a", "x": 0.3})]
    run += [RunStarted(run_id="p001-1", proposal_id="p001", worker="w")]
    run += [RunFinished(run_id="p001-1", proposal_id="p001", value=3.0)]
    view = _view(*run, budget=BudgetLimits(max_experiments=1))
    finished_at = view.kanban.cards["p001"].history[-1].at
    assert decide(view, SPACE, workers=1, now=finished_at) == []  # the worker's analysis may still come
    later = decide(view, SPACE, workers=1, now=finished_at + timedelta(seconds=ANALYSIS_GRACE_S))
    assert [d.key for d in later] == ["p001-1-analyzed"]
    assert later[0].payload == judge(view.leaderboard, "p001-1", "p001")
    assert later[0].payload.verdict == "improved"  # type: ignore[attr-defined]
    lab = evolve(Lab(campaigns={"c1": view}), event(later[0].payload, "c1", 100))
    finish = decide(lab.campaigns["c1"], SPACE, workers=1, now=finished_at + timedelta(seconds=61))
    assert isinstance(finish[-1].payload, CampaignFinished)
    assert finish[-1].payload.reason == "experiment budget of 1 spent"


def test_a_dead_lettered_proposal_does_not_block_the_experiment_budget_stop() -> None:
    """A proposal whose message the bus gave up on is dead, listed as such, and the budget stop fires."""
    budget = BudgetLimits(max_experiments=2)
    queued = ProposalCreated(proposal_id="p002", config={"x": 1})
    view = _view(*_completed("p001", 3.0), queued, budget=budget)
    created = view.kanban.cards["p002"].history[0].event_id
    rejected = EventRejected(
        reason="handler failed 5 times", subject="alphalab.events.c1.proposal-created", size=10,
        sha256=DIGEST, rejected_by="worker", event_id=created,
    )  # fmt: skip
    lab = evolve(Lab(campaigns={"c1": view}), event(rejected, "c1", 100))
    view = lab.campaigns["c1"]
    assert snapshot(view)["kanban"]["columns"]["dead"] == ["p002"]
    finished = decide(view, SPACE, workers=1, now=EPOCH)[-1].payload
    assert isinstance(finished, CampaignFinished) and finished.reason == "experiment budget of 2 spent"


def test_a_dead_lettered_proposal_is_no_outcome_for_the_search() -> None:
    """Like a cancelled one, a dead proposal never gets a result, so the search does not wait on it."""
    view = _view(*_completed("p001", 3.0), ProposalCreated(proposal_id="p002", config={"x": 1}))
    created = view.kanban.cards["p002"].history[0].event_id
    rejected = EventRejected(
        reason="x", subject="alphalab.events.c1.proposal-created", size=1, sha256=DIGEST,
        rejected_by="worker", event_id=created,
    )  # fmt: skip
    lab = evolve(Lab(campaigns={"c1": view}), event(rejected, "c1", 100))
    assert [pid for pid, _ in outcomes(lab.campaigns["c1"])] == ["p001"]


def test_an_operators_pause_holds_new_proposals_until_resumed_and_a_stop_ends_the_campaign() -> None:
    """Paused: nothing new (a lost analysis is still made); resumed: proposals again; asked to stop:
    the campaign ends at once, open proposals cancelled, naming who asked and why."""
    paused = CampaignPaused(by="ada", reason="the GPU is needed")
    assert decide(_view(paused), SPACE, workers=2, now=EPOCH) == []
    resumed = decide(_view(paused, CampaignResumed(by="ada")), SPACE, workers=2, now=EPOCH)
    assert sum(isinstance(d.payload, ProposalCreated) for d in resumed) == 3

    run = [ProposalCreated(proposal_id="p001", config={"model": "a", "x": 0.1}),
           RunStarted(run_id="p001-1", proposal_id="p001", worker="w"),
           RunFinished(run_id="p001-1", proposal_id="p001", value=3.0)]  # fmt: skip
    late = EPOCH + timedelta(seconds=ANALYSIS_GRACE_S + 60)
    lost = decide(_view(*run, paused), SPACE, workers=2, now=late)
    assert [type(d.payload) for d in lost] == [RunAnalyzed]

    waiting = ProposalCreated(proposal_id="p002", config={"model": "b", "x": 0.2})
    stop = CampaignStopRequested(by="ada", reason="enough for today")
    decisions = decide(_view(*run, waiting, paused, stop), SPACE, workers=2, now=EPOCH)
    cancelled = [d.payload.proposal_id for d in decisions if isinstance(d.payload, ProposalCancelled)]
    finished = [d.payload for d in decisions if isinstance(d.payload, CampaignFinished)]
    assert "p002" in cancelled and finished[0].reason == "stopped by ada: enough for today"


def test_an_operators_submission_is_proposed_as_it_stands_or_refused_saying_why() -> None:
    """A submission becomes the next numbered proposal (answering it), under either brain; one outside
    the search space is refused; neither is answered twice."""
    good = event(
        ProposalSubmitted(by="ada", config={"model": "b", "x": 0.5}, hypothesis="b is underrated"), "c1"
    )
    bad = event(ProposalSubmitted(by="bob", config={"model": "c"}), "c1")
    view = _view()
    for step in (good, bad):
        view = evolve(Lab(campaigns={"c1": view}), step).campaigns["c1"]
    decisions = decide(view, SPACE, workers=1, now=EPOCH)
    proposed = [d.payload for d in decisions if isinstance(d.payload, ProposalCreated)]
    refused = [d.payload for d in decisions if isinstance(d.payload, SubmissionRefused)]
    assert [(p.proposal_id, p.config, p.answers) for p in proposed] == [
        ("p001", {"model": "b", "x": 0.5}, good.event_id)
    ]
    assert proposed[0].rationale == "proposed by ada" and proposed[0].hypothesis == "b is underrated"
    assert refused[0].submission == bad.event_id and "'c' is not one of ['a', 'b']" in refused[0].reason
    for decision in decisions:
        view = evolve(Lab(campaigns={"c1": view}), event(decision.payload, "c1")).campaigns["c1"]
    assert not any(
        isinstance(d.payload, ProposalCreated) and d.payload.answers
        for d in decide(view, SPACE, workers=1, now=EPOCH)
    )


def test_the_builtin_brain_follows_a_hint_that_names_parameters_in_its_next_proposal() -> None:
    hint = event(HintGiven(by="ada", text="try model=b, x=0.9 please"), "c1")
    view = evolve(Lab(campaigns={"c1": _view()}), hint).campaigns["c1"]
    proposals = [
        d.payload for d in decide(view, SPACE, workers=2, now=EPOCH) if isinstance(d.payload, ProposalCreated)
    ]
    followed = [p for p in proposals if p.answers == hint.event_id]
    assert len(followed) == 1 and followed[0].config == {"model": "b", "x": 0.9}
    assert followed[0].rationale == "following ada's hint: try model=b, x=0.9 please"
    vague = evolve(
        Lab(campaigns={"c1": _view()}), event(HintGiven(by="ada", text="be bold"), "c1")
    ).campaigns["c1"]
    assert not any(getattr(d.payload, "answers", None) for d in decide(vague, SPACE, workers=2, now=EPOCH))


def test_a_long_history_is_windowed_to_the_pending_the_best_and_the_latest() -> None:
    """A study of a long campaign holds about the window's trials, so a decision costs the same at
    any length (building a study and each TPE ask are linear in its trials)."""
    history = [Outcome({"x": i}, float(i % 97)) for i in range(5000)]
    history[10] = Outcome({"x": "running"}, None)  # pending, however old
    history[20] = Outcome({"x": "crashed"}, None, failed=True)
    kept = window(history, "minimize", size=400)
    assert 300 + 100 <= len(kept) <= 400 + 100 + 1 and kept == sorted(kept, key=history.index)  # in order
    assert history[10] in kept and history[20] not in kept
    best = sorted((o for o in history if o.value is not None), key=lambda o: o.value or 0)[:100]
    assert all(o in kept for o in best)
    assert history[-300:] == kept[-300:]  # and the latest
    assert window(history[:300], "minimize", size=400) == history[:300]
    highest = sorted((o for o in history if o.value is not None), key=lambda o: -(o.value or 0))[:100]
    assert all(o in window(history, "maximize", size=400) for o in highest)  # the best by the direction


def test_the_window_only_grows_at_its_end_between_its_steps() -> None:
    """So that a kept study can follow it by adding trials: its start moves every size/4 outcomes."""
    history = [Outcome({"x": i}, float((i * 37) % 101)) for i in range(1000)]
    moved = 0
    for n in range(400, 999):
        before, after = (
            window(history[:n], "minimize", size=400),
            window(history[: n + 1], "minimize", size=400),
        )
        if after[: len(before)] != before:
            moved += 1
    assert moved == 5  # at 500, 600, 700, 800 and 900: once per step of 100, never in between


def test_a_kept_study_proposes_what_a_study_built_afresh_from_the_log_would(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The Strategist keeps each campaign's study between decisions and only brings it up to date; a
    restarted one builds it from the log. Both must propose the same: through finished and failed
    runs, proposals that were dropped or replaced before publishing, a hint, and the window's steps."""
    monkeypatch.setattr(search, "WINDOW", 40)
    rng = random.Random(3)
    history: list[Outcome] = []
    for turn in range(90):
        fixed = {"model": "b"} if turn % 17 == 5 else None
        kwargs = dict(direction="minimize", count=rng.randint(1, 3), seed=turn, startup=6, fixed=fixed)
        kept = search.propose(SPACE, history, study_key="campaign", **kwargs)  # type: ignore[arg-type]
        afresh = search.propose(SPACE, history, **kwargs)  # type: ignore[arg-type]
        assert kept == afresh, f"turn {turn}"
        for config in kept:
            if rng.random() < 0.15:
                continue  # never published
            history.append(Outcome({} if rng.random() < 0.05 else config, None))
        for index, outcome in enumerate(history):  # some running ones finish
            if outcome.value is None and not outcome.failed and rng.random() < 0.6:
                failed = rng.random() < 0.1
                value = None if failed else rng.random() + 0.1 * len(outcome.config)
                history[index] = Outcome(outcome.config, value, failed=failed)
