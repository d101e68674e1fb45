"""The Worker process: one proposal at a time from the durable consumer that all workers share.

JetStream gives each queued proposal to exactly one worker; a worker that dies leaves its message
unacked and JetStream redelivers it after `ACK_WAIT_S` (long runs call `in_progress()` meanwhile).
Before running, the worker consults its projection of the stream, so a redelivered proposal that
already finished is not run again, and a cancelled one is not run at all. Its events have ids
derived from the run id, so republishing after a crash is deduplicated.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from services.worker.execution import execute
from shared.bus import Bus, Delivery
from shared.domain import load_domain
from shared.events import Event, Payload, ProposalCreated, RunFailed, RunStarted
from shared.heartbeat import Heartbeat
from shared.live import LiveProjection
from shared.projections import CampaignView
from shared.projections.verdict import judge
from shared.settings import Settings

__all__ = ["ACK_WAIT_S", "DURABLE", "run"]

DURABLE = "workers"
ACK_WAIT_S = 30.0
CLOSED = frozenset({"analyzed", "cancelled"})
HAS_RESULT = frozenset({"finished", "failed"})
log = structlog.get_logger(__name__)


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    projection = LiveProjection(bus)
    await projection.start()
    try:
        async with Heartbeat(bus) as heartbeat:
            worker = _Worker(bus, projection, heartbeat, settings)
            subscription = await bus.subscription(
                DURABLE, subject="alphalab.events.*.proposal-created", ack_wait=ACK_WAIT_S
            )
            turned = lambda: heartbeat.turned(projection.stream_seq)  # noqa: E731
            await bus.consume(subscription, worker.handle, stop, batch=1, on_turn=turned)
    finally:
        await projection.stop()


class _Worker:
    def __init__(
        self, bus: Bus, projection: LiveProjection, heartbeat: Heartbeat, settings: Settings
    ) -> None:
        self.bus, self.projection, self.heartbeat = bus, projection, heartbeat
        self.workspaces = settings.home / "workspaces"

    async def handle(self, event: Event, delivery: Delivery) -> None:
        proposal = event.payload
        if not isinstance(proposal, ProposalCreated):
            return
        await self.projection.settle()
        view = self.projection.lab.campaigns[event.campaign_id]
        card = view.kanban.cards[proposal.proposal_id]
        if card.state in CLOSED or card.state in HAS_RESULT or view.status == "finished":
            if card.state in HAS_RESULT:  # its run ended, but the analysis was lost in a crash
                await self._analyze(event, view, card.run_ids[-1], None)
            log.info("proposal_skipped", proposal_id=proposal.proposal_id, state=card.state)
            return
        run_id = f"{proposal.proposal_id}-{len(card.run_ids) + 1}"
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            await self._publish(event, f"{run_id}-started", RunStarted(
                run_id=run_id, proposal_id=proposal.proposal_id, worker=self.bus.producer.instance,
                attempt=len(card.run_ids) + 1,
            ))  # fmt: skip
            self.heartbeat.busy_with = run_id
            try:
                result = await self._run_unless_cancelled(event, view, proposal, run_id, delivery)
            finally:
                self.heartbeat.busy_with = None
            await self._publish(event, f"{run_id}-{result.TYPE}", result)  # kept for audit, counted or not
            await self.projection.settle()
            view = self.projection.lab.campaigns[event.campaign_id]
            counted = view.holds(proposal.proposal_id, run_id)  # not if cancelled or superseded meanwhile
            if counted:
                await self._analyze(event, view, run_id, result)
            log.info("run_done", outcome=result.TYPE, fenced=not counted)

    async def _run_unless_cancelled(
        self, event: Event, view: CampaignView, proposal: ProposalCreated, run_id: str, delivery: Delivery
    ) -> Payload:
        """Run the proposal; if it is cancelled meanwhile, kill the run and report it failed."""
        assert view.domain is not None
        running = asyncio.create_task(
            execute(
                load_domain(view.domain),
                run_id=run_id,
                proposal_id=proposal.proposal_id,
                config=dict(proposal.config),
                seed=proposal.seed,
                data=view.data,
                workspace=self.workspaces / event.campaign_id / run_id,
                on_tick=lambda: self._tick(delivery),
            )
        )
        while not running.done():
            await asyncio.wait({running}, timeout=0.5)
            card = self.projection.lab.campaigns[event.campaign_id].kanban.cards[proposal.proposal_id]
            if card.state == "cancelled" and not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return RunFailed(
                    run_id=run_id, proposal_id=proposal.proposal_id, error="cancelled while running"
                )
        return running.result()

    async def _tick(self, delivery: Delivery) -> None:
        """A long run's sign of life: to JetStream (keep the message) and to the heartbeat (progress)."""
        self.heartbeat.turned()
        await delivery.in_progress()

    async def _analyze(self, cause: Event, view: CampaignView, run_id: str, result: Payload | None) -> None:
        """Judge a run against the incumbent best, which ends the proposal's life on the board."""
        pid = cause.payload.proposal_id  # type: ignore[attr-defined]
        error = result.error if isinstance(result, RunFailed) else None
        analysis = judge(view.leaderboard, run_id, pid, error)
        await self._publish(cause, f"{run_id}-analyzed", analysis)

    async def _publish(self, cause: Event, key: str, payload: Payload) -> None:
        event = Event.new(
            payload,
            campaign_id=cause.campaign_id,
            producer=self.bus.producer,
            caused_by=cause,
            event_id=f"{cause.campaign_id}-{key}",
        )
        await self.bus.publish(event)
