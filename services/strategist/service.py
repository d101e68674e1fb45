"""The Strategist process: follows the event stream and publishes what `policy.decide` says.

Its only state is the projection of the stream, rebuilt from the first event on every start; the
Optuna study is rebuilt from that projection for every decision. So it can be killed at any moment.

With the LLM brain, a model's turn (`llm.py`) runs beside the main loop, one per campaign at a time,
so the loop keeps turning (heartbeat, lost analyses, the end of the campaign) while the model thinks.
Whatever publishes proposals holds `_publishing`: proposal numbers come from the view, so two
publishers numbering from the same view would collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import structlog

from services.strategist import llm
from services.strategist.policy import decide
from shared.agents.session import Agent, run_agent_turn
from shared.bus import Bus, bus_away
from shared.domain import Domain
from shared.events import AgentTurn, CampaignFinished, Event, PhaseFinished, Price
from shared.heartbeat import alive
from shared.inputs import Inputs
from shared.live import Decision, LiveProjection, follow, publish_decisions, running_campaigns
from shared.llm import price_for
from shared.projections import CampaignView
from shared.settings import Settings

__all__ = ["run"]

log = structlog.get_logger(__name__)
TICK_S = 2.0  # turns on every new event too: this is for what time alone decides (the wall-clock budget)


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    strategist = _Strategist(bus, Inputs(bus.blobs, settings.inputs_cache))
    try:
        await follow(bus, stop, TICK_S, strategist.step, on_events=True)
    finally:
        await strategist.close()


class _Strategist:
    def __init__(self, bus: Bus, inputs: Inputs) -> None:
        self.bus, self.inputs = bus, inputs
        self._publishing = asyncio.Lock()
        self._turns: dict[str, asyncio.Task[None]] = {}

    async def step(self, projection: LiveProjection) -> None:
        workers = len(await alive(self.bus, "worker"))
        for view, domain in await running_campaigns(projection.lab, self.inputs):
            async with self._publishing:
                began = time.perf_counter()
                decisions = decide(view, domain.manifest.search_space, workers=workers, now=datetime.now(UTC))
                seconds = time.perf_counter() - began
                if not decisions and view.brain == "llm":
                    decisions = await self._llm(projection, view, domain, workers)
                if decisions:
                    await publish_decisions(self.bus, projection, view.campaign_id, decisions)
                    log.info(
                        "decided",
                        campaign_id=view.campaign_id,
                        events=[d.key for d in decisions],
                        seconds=round(seconds, 4),  # the builtin decide alone (bench/scale.py reads it)
                        results=view.results,
                    )
        for campaign_id, task in list(self._turns.items()):
            if not task.done() and projection.lab.campaigns[campaign_id].status != "running":
                task.cancel()  # the campaign ended (a budget, a stop): its turn's work would be dropped
            if task.done():
                del self._turns[campaign_id]
                if not task.cancelled():
                    task.result()  # a turn that crashed crashes the service: restarted, it repeats the turn

    async def _llm(
        self, projection: LiveProjection, view: CampaignView, domain: Domain, workers: int
    ) -> list[Decision]:
        """Start a model turn if one is due; end the campaign if the model cannot go on."""
        reason = llm.gave_up(view)
        if reason is not None:
            return [
                Decision("phase-experiment-finished", PhaseFinished(phase="experiment", outcome=reason)),
                Decision("campaign-finished", CampaignFinished(reason=reason)),
            ]
        if view.campaign_id in self._turns or not view.explored or view.harness != "accepted" or view.paused:
            return []
        unrecorded = llm.unrecorded_turn(view)
        if unrecorded is not None:
            await self._recover(view, unrecorded)  # its decisions are out; only its record was lost
            return []
        number = len(llm.strategist_turns(view)) + 1
        why = llm.due(view, workers, datetime.now(UTC))
        if why is not None:
            task = asyncio.create_task(self._turn(projection, view.campaign_id, domain, why, number))
            self._turns[view.campaign_id] = task
        return []

    async def _turn(
        self, projection: LiveProjection, campaign_id: str, domain: Domain, why: str, number: int
    ) -> None:
        view = projection.lab.campaigns[campaign_id]
        plan = llm.Plan()
        current = lambda: projection.lab.campaigns[campaign_id]  # noqa: E731
        with structlog.contextvars.bound_contextvars(campaign_id=campaign_id):
            log.info("strategist_turn", turn=number, why=why)
            turn = await run_agent_turn(
                self._agent(view),
                key=f"strategist-turn-{number}",
                number=number,
                purpose="plan",
                system=llm.system_prompt(domain),
                prompt=llm.turn_prompt(view, domain, why, number),
                tools=llm.tools(current, domain, plan),
                caps=llm.CAPS,
                before_record=lambda: self._publish_plan(projection, campaign_id, plan, number),
                stop=lambda: current().turns_stopped,
            )
            log.info("strategist_turn_done", turn=number, ended=turn.ended, proposals=len(plan.proposals))

    async def _publish_plan(
        self, projection: LiveProjection, campaign_id: str, plan: llm.Plan, number: int
    ) -> str | None:
        """Publish what the turn decided, marked as caused by the turn's record-to-be; or say why not."""
        async with self._publishing:
            await projection.settle()
            view = projection.lab.campaigns[campaign_id]
            if view.status != "running":
                return None
            decisions = plan.decisions(view)
            if not decisions:
                return None
            try:
                await publish_decisions(
                    self.bus, projection, campaign_id, decisions, caused_by=llm.turn_id(campaign_id, number)
                )
            except Exception as err:  # noqa: BLE001 - one error boundary: the turn is recorded with it
                if bus_away(err):
                    raise  # published in part or not at all: the restarted service recovers or repeats
                log.error("plan_not_published", error=repr(err))
                return f"its decisions could not be published: {err}"[:500]
            return None

    async def _recover(self, view: CampaignView, number: int) -> None:
        """Record a turn whose decisions were published before the process stopped, instead of paying
        for it again."""
        record = AgentTurn(
            role="strategist",
            turn=number,
            agent=self.bus.producer.instance,
            purpose="plan",
            summary="recovered: the turn's decisions were published before the strategist stopped",
            ended="recovered",
        )
        event = Event.new(
            record,
            campaign_id=view.campaign_id,
            producer=self.bus.producer,
            event_id=llm.turn_id(view.campaign_id, number),
        )
        await self.bus.publish(event)
        log.warning("strategist_turn_recovered", campaign_id=view.campaign_id, turn=number)

    def _agent(self, view: CampaignView) -> Agent:
        assert view.llm is not None
        choice = view.llm.roles["strategist"]
        price = price_for(choice, view.llm.prices) or Price(input=0.0, output=0.0)
        return Agent(self.bus, view.campaign_id, "strategist", self.bus.producer.instance, choice, price)

    async def close(self) -> None:
        for task in self._turns.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
