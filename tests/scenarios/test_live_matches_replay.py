"""Property: for any campaign, projections folded live from JetStream equal those replayed from DuckDB."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ledger import writer
from shared.bus import Bus
from shared.events import (
    BaselineEvaluated,
    BudgetLimits,
    CampaignStarted,
    Event,
    Lesson,
    LlmCallFinished,
    Payload,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    RunStarted,
    encode,
    subject_for,
)
from shared.ledger import Ledger
from shared.live import LiveProjection
from shared.projections import snapshot
from shared.replay import fold
from shared.settings import Settings
from tests.conftest import wait_for
from tests.factories import event

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=False)


@st.composite
def proposal_story(draw: st.DrawFn, index: int) -> list[Payload]:
    """One proposal's life: created, maybe run (finished or failed), maybe analyzed or cancelled."""
    pid, rid = f"p{index}", f"r{index}"
    story: list[Payload] = [
        ProposalCreated(proposal_id=pid, config={"lr": draw(st.sampled_from([0.1, 0.01, 0.001]))}, seed=index)
    ]
    ending = draw(st.sampled_from(["queued", "cancelled", "finished", "failed", "analyzed"]))
    if ending == "cancelled":
        return [*story, ProposalCancelled(proposal_id=pid, reason="budget")]
    if ending == "queued":
        return story
    story.append(RunStarted(run_id=rid, proposal_id=pid, worker="w1"))
    seconds = draw(st.floats(min_value=0, max_value=600))
    if ending == "failed":
        return [*story, RunFailed(run_id=rid, proposal_id=pid, error="boom", wall_seconds=seconds)]
    story.append(RunFinished(run_id=rid, proposal_id=pid, value=draw(values), wall_seconds=seconds))
    if ending == "analyzed":
        story.append(RunAnalyzed(run_id=rid, proposal_id=pid, verdict="improved"))
    return story


@st.composite
def campaigns(draw: st.DrawFn) -> list[Payload | bytes]:
    """A campaign: its start, interleaved proposal stories, and extras (baselines, LLM calls, playbook
    revisions, an event of an unknown type, a malformed message)."""
    start = CampaignStarted(
        domain="toy",
        objective="x",
        metric="m",
        direction=draw(st.sampled_from(["minimize", "maximize"])),
        budget=BudgetLimits(max_experiments=draw(st.integers(1, 50))),
    )
    stories = [draw(proposal_story(i)) for i in range(draw(st.integers(0, 8)))]
    extras: list[Payload | bytes] = [
        BaselineEvaluated(name=f"b{i}", value=draw(values)) for i in range(draw(st.integers(0, 2)))
    ]
    extras += [
        LlmCallFinished(
            role="strategist", provider="p", model="m", input_tokens=10, output_tokens=5, usd=0.01, seconds=1
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    extras += [
        PlaybookRevised(
            revision=draw(st.integers(1, 4)), lessons=(Lesson(text=f"lesson {i}", run_ids=("r0",)),)
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    extras += draw(st.lists(st.sampled_from([b"unknown-type", b"malformed"]), max_size=2))
    # Interleave: repeatedly take the next item of a randomly chosen queue, keeping each story in order.
    queues = [list(s) for s in stories] + [[x] for x in extras]
    ordered: list[Payload | bytes] = [start]
    while queues:
        queue = queues[draw(st.integers(0, len(queues) - 1))]
        ordered.append(queue.pop(0))
        queues = [q for q in queues if q]
    return ordered


async def _publish(bus: Bus, campaign_id: str, items: list[Payload | bytes]) -> list[Event]:
    """Publish each item; returns the well-formed events published, in order."""
    sent: list[Event] = []
    for second, item in enumerate(items):
        if item == b"malformed":
            await bus.js.publish(subject_for(campaign_id, "run-finished"), b'{"event_id": 42}')
        elif item == b"unknown-type":
            wire = json.loads(
                encode(event(RunStarted(run_id="x", proposal_id="x", worker="w"), campaign_id, second))
            )
            wire.update(event_id=uuid.uuid4().hex, type="run-teleported", payload={"to": "mars"})
            await bus.js.publish(subject_for(campaign_id, "run-teleported"), json.dumps(wire).encode())
        else:
            sent.append(event(item, campaign_id, second))  # type: ignore[arg-type]
            await bus.publish(sent[-1])
    return sent


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=campaigns())
async def test_live_projection_equals_replay(items: list[Payload | bytes], bus: Bus, tmp_path: Path) -> None:
    """Fold a generated campaign live from the stream and from the ledger: every projection agrees."""
    campaign_id = uuid.uuid4().hex[:12]
    home = tmp_path / campaign_id
    live = LiveProjection(bus, campaign_id=campaign_id)
    await live.start()
    stop = asyncio.Event()
    ledger_task = asyncio.create_task(writer.run(bus, stop, Settings(home=home, nats_url="unused")))
    try:
        sent = await _publish(bus, campaign_id, items)
        await wait_for(lambda: bus.consumer_caught_up(writer.DURABLE), 30, "the ledger to catch up")
        await wait_for(live.caught_up, 30, "the live projection to catch up")
    finally:
        stop.set()
        await ledger_task
        await live.stop()

    with Ledger(home / "ledger.duckdb", read_only=True) as ledger:
        replayed = fold(ledger.events(campaign_id=campaign_id))
    live_view = snapshot(live.lab.campaigns[campaign_id])
    assert live_view == snapshot(replayed.campaigns[campaign_id])
    # and both agree with folding what was sent, plus one position per unknown-type event and rejection
    extra = sum(1 for item in items if isinstance(item, bytes))
    assert live_view["position"] == len(sent) + extra
    expected = snapshot(fold(sent).campaigns[campaign_id])
    assert live_view["leaderboard"] == expected["leaderboard"]
    assert live_view["kanban"] == expected["kanban"]
    assert live_view["playbook"] == expected["playbook"]
