"""The LLM Strategist's rules that need no model: when a turn is due, when the campaign must end, what a
turn's tool calls become, and how a code proposal's results land on the leaderboard."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.strategist import llm
from services.strategist.policy import decide
from shared.domain import load_domain
from shared.events import (
    AgentTurn,
    BudgetLimits,
    CampaignStarted,
    ExplorationFinished,
    HarnessAccepted,
    LlmPlan,
    ModelChoice,
    ProposalCreated,
    RunAnalyzed,
    RunFinished,
    RunStarted,
)
from shared.projections import CampaignView
from shared.projections.lab import Lab, evolve
from tests.factories import EPOCH, event

DIGEST = "sha256:" + "a" * 64
CHILD = "sha256:" + "b" * 64
PLAN = LlmPlan(
    roles={r: ModelChoice(provider="anthropic", model="claude-opus-4-6") for r in ("strategist", "worker")}
)
DOMAIN = load_domain("traffic")


def _view(*payloads: object, experiments: int = 10) -> CampaignView:
    start = CampaignStarted(
        domain="traffic",
        objective="o",
        metric="mae",
        direction="minimize",
        brain="llm",
        llm=PLAN,
        budget=BudgetLimits(max_experiments=experiments, max_usd=1.0),
    )
    lab = Lab()
    for second, payload in enumerate(
        [start, ExplorationFinished(), HarnessAccepted(harness_digest=DIGEST), *payloads]
    ):
        evolve(lab, event(payload, second=second))  # type: ignore[arg-type]
    return lab.campaigns["c1"]


def _turn(number: int, ended: str = "reported") -> AgentTurn:
    return AgentTurn(role="strategist", turn=number, agent="strategist", ended=ended)


def _run(pid: str, value: float, code: str | None = None) -> list[object]:
    run_id = f"{pid}-1"
    return [
        RunStarted(run_id=run_id, proposal_id=pid, worker="w1"),
        RunFinished(run_id=run_id, proposal_id=pid, value=value, code_digest=code),
        RunAnalyzed(run_id=run_id, proposal_id=pid, verdict="improved"),
    ]


def test_a_turn_is_due_at_the_start_after_three_results_and_on_the_interval() -> None:
    now = EPOCH + timedelta(seconds=10)
    assert llm.due(_view(), workers=1, now=now) == "the campaign starts"
    proposals = [ProposalCreated(proposal_id=f"p00{i}", config={"lags": i}) for i in range(1, 5)]
    busy = _view(*proposals, _turn(1))
    assert llm.due(busy, workers=1, now=now) is None  # queued work, no new results, too soon
    later = EPOCH + timedelta(seconds=llm.INTERVAL_S + 60)
    assert llm.due(busy, workers=1, now=later) is not None
    results = [p for pid in ("p001", "p002", "p003") for p in _run(pid, 4.0)]
    assert llm.due(_view(*proposals, _turn(1), *results), workers=1, now=now) == "3 new results"


def test_an_idle_worker_with_nothing_queued_asks_for_a_turn() -> None:
    view = _view(ProposalCreated(proposal_id="p001", config={}), _turn(1), *_run("p001", 4.0))
    assert (
        llm.due(view, workers=2, now=EPOCH + timedelta(seconds=20))
        == "a worker is idle and nothing is queued"
    )


def test_the_campaign_ends_when_the_model_keeps_failing_or_proposes_nothing() -> None:
    failing = _view(*(_turn(n, "model error: anthropic: HTTP 401") for n in (1, 2, 3)))
    assert "failed 3 turns in a row" in (llm.gave_up(failing) or "")
    empty = _view(_turn(1), _turn(2))
    assert "proposed nothing in 2 turns" in (llm.gave_up(empty) or "")
    assert llm.gave_up(_view(ProposalCreated(proposal_id="p001", config={}), _turn(1), _turn(2))) is None


def test_a_turns_proposals_are_numbered_when_published_and_checked_against_the_space() -> None:
    view = _view(ProposalCreated(proposal_id="p001", config={"model": "gbdt"}), *_run("p001", 4.0, None))
    plan = llm.Plan()
    tools = {t.name: t for t in llm.tools(lambda: view, DOMAIN, plan)}

    async def call(name: str, **arguments: object) -> object:
        return await tools[name].run(tools[name].arguments(**arguments))

    bad = asyncio.run(call("propose_experiment", hypothesis="h", config={"model": "svm"}))
    assert bad.is_error and "not one of" in bad.text  # type: ignore[attr-defined]
    assert asyncio.run(call("propose_experiment", hypothesis="h", config={"lags": 12})).is_error is False  # type: ignore[attr-defined]
    code = asyncio.run(call("propose_experiment", hypothesis="h2", change="add features", parent="p001-1"))
    assert not code.is_error  # type: ignore[attr-defined]
    unknown = asyncio.run(call("propose_experiment", hypothesis="h3", change="x", parent="p999-1"))
    assert unknown.is_error and "unknown parent" in unknown.text  # type: ignore[attr-defined]
    cited = asyncio.run(call("update_playbook", lessons=[{"text": "t", "run_ids": ["p404-1"]}]))
    assert cited.is_error and "p404-1" in cited.text  # type: ignore[attr-defined]
    asyncio.run(call("update_playbook", lessons=[{"text": "gbdt is fine", "run_ids": ["p001-1"]}]))
    keys = [d.key for d in plan.decisions(view)]
    assert keys == ["p002-created", "p003-created", "playbook-1"]
    created = [d.payload for d in plan.decisions(view) if isinstance(d.payload, ProposalCreated)]
    assert (
        created[1].change == "add features" and created[1].parent_digest is None
    )  # p001-1 ran the base code


def test_code_candidates_get_rows_of_their_own_and_their_replicates_join_them() -> None:
    view = _view(
        ProposalCreated(proposal_id="p001", config={"lags": 8}, change="new features"),
        *_run("p001", 3.0, CHILD),
        ProposalCreated(proposal_id="p002", config={"lags": 8}),
        *_run("p002", 4.0, DIGEST),
    )
    [code_row] = [r for r in view.leaderboard.rows.values() if r.code_digest == CHILD]
    assert code_row.run_ids == ["p001-1"] and code_row.label.startswith("code bbbbbbbb")
    # The lab replicates the contender itself: its bundle, unchanged, with a new seed.
    confirmations = [
        d.payload
        for d in decide(view, DOMAIN.manifest.search_space, workers=1, now=EPOCH)
        if isinstance(d.payload, ProposalCreated)
    ]
    assert confirmations and all(p.parent_digest == CHILD and not p.change for p in confirmations)
    replicate = _view(
        ProposalCreated(proposal_id="p001", config={"lags": 8}, change="new features"),
        *_run("p001", 3.0, CHILD),
        ProposalCreated(proposal_id="p002", config={"lags": 8}, parent_digest=CHILD),
        *_run("p002", 3.1, CHILD),
    )
    [row] = [r for r in replicate.leaderboard.rows.values() if r.code_digest == CHILD]
    assert row.n == 2


def test_the_dollar_cap_ends_an_llm_campaign() -> None:
    from shared.events import LlmCallFinished

    call = LlmCallFinished(
        role="worker", provider="anthropic", model="m", input_tokens=1, output_tokens=1, usd=1.5, seconds=1
    )
    decisions = decide(
        _view(ProposalCreated(proposal_id="p001", config={}), call),
        DOMAIN.manifest.search_space,
        workers=1,
        now=EPOCH,
    )
    keys = [d.key for d in decisions]
    assert keys[0] == "budget-usd-exhausted" and "p001-cancelled" in keys and keys[-1] == "campaign-finished"
    assert "USD budget of $1 spent" in decisions[-1].payload.reason  # type: ignore[attr-defined]


def test_a_turn_whose_decisions_are_out_but_whose_record_is_not_is_recovered_not_rerun() -> None:
    lab = Lab()
    for second, payload in enumerate(
        [
            CampaignStarted(
                domain="traffic", objective="o", metric="mae", direction="minimize", brain="llm", llm=PLAN
            ),
            ExplorationFinished(),
            HarnessAccepted(harness_digest=DIGEST),
        ]
    ):
        evolve(lab, event(payload, second=second))
    assert llm.unrecorded_turn(lab.campaigns["c1"]) is None
    proposal = event(ProposalCreated(proposal_id="p001", config={}), second=5).model_copy(
        update={"causation_id": llm.turn_id("c1", 1)}
    )
    evolve(lab, proposal)
    assert llm.unrecorded_turn(lab.campaigns["c1"]) == 1
    evolve(lab, event(_turn(1), second=6, event_id=llm.turn_id("c1", 1)))
    assert llm.unrecorded_turn(lab.campaigns["c1"]) is None


def test_a_failed_code_change_does_not_block_replicating_the_plain_configuration() -> None:
    config = {"model": "gbdt", "lags": 8}
    view = _view(
        ProposalCreated(proposal_id="p001", config=config),
        *_run("p001", 3.0),
        ProposalCreated(proposal_id="p002", config=config, change="a model's idea"),
        RunStarted(run_id="p002-1", proposal_id="p002", worker="w1"),
    )
    confirmations = [
        d.payload
        for d in decide(view, DOMAIN.manifest.search_space, workers=2, now=EPOCH)
        if isinstance(d.payload, ProposalCreated)
    ]
    assert confirmations and all(p.config == config and p.parent_digest is None for p in confirmations)


def test_a_playbook_given_as_markdown_becomes_lessons_citing_the_runs_it_names() -> None:
    view = _view(ProposalCreated(proposal_id="p001", config={"model": "gbdt"}), *_run("p001", 4.0, None))
    plan = llm.Plan()
    tools = {t.name: t for t in llm.tools(lambda: view, DOMAIN, plan)}
    tool = tools["update_playbook"]
    markdown = "# Playbook\n- gbdt is a fair start (p001-1)\n- weekly lags untested\n"
    done = asyncio.run(tool.run(tool.arguments(content=markdown)))
    assert not done.is_error, done.text
    [*_, revised] = plan.decisions(view)
    assert [(lesson.text, lesson.run_ids) for lesson in revised.payload.lessons] == [  # type: ignore[attr-defined]
        ("gbdt is a fair start (p001-1)", ("p001-1",)),
        ("weekly lags untested", ()),
    ]
