"""Explore each campaign once: on `campaign-started`, publish the data report, plots and baselines,
then test the harness (Phase 2) and accept or reject it.

Every event the explorer publishes for a campaign has an id derived from the campaign (and the
baseline's name), and before publishing it looks in the stream for what is already there. So a
redelivery after a crash, or the same campaign started twice, finishes what is missing and doubles
nothing, however long after: JetStream's duplicate window is not relied on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence

import structlog
from nats.js.errors import NotFoundError

from services.explorer.acceptance import accept
from services.explorer.explore import Exploration, explore
from shared.bus import STREAM, Bus, Delivery, bus_away
from shared.errors import ConfigError, MalformedEvent
from shared.events import (
    SUBJECT_PREFIX,
    BaselineEvaluated,
    CampaignStarted,
    Event,
    ExplorationFinished,
    HarnessAccepted,
    HarnessRejected,
    Payload,
    PhaseFinished,
    PhaseStarted,
    decode,
    subject_for,
)
from shared.heartbeat import Heartbeat
from shared.inputs import Inputs
from shared.periodic import every
from shared.sandbox import tree
from shared.settings import Settings

__all__ = ["ACK_WAIT_S", "DURABLE", "MAX_DELIVER", "Explorer", "run"]

DURABLE = "explorer"
MAX_DELIVER = 3
ACK_WAIT_S = 10.0  # short, so a crashed explorer's campaign is retried soon; a live one says in_progress
_OWN_TYPES = (
    "phase-started",
    "baseline-evaluated",
    "exploration-finished",
    "phase-finished",
    "harness-reviewed",
    "harness-tested",
    "harness-accepted",
    "harness-rejected",
)
log = structlog.get_logger(__name__)


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    """Explore every campaign that starts, one at a time, until `stop` is set."""
    subscription = await bus.subscription(
        DURABLE, subject=subject_for("*", CampaignStarted.TYPE), ack_wait=ACK_WAIT_S
    )
    async with Heartbeat(bus) as heartbeat:
        # One message at a time: a prefetched campaign would wait unacked while another is explored.
        explorer = Explorer(bus, Inputs(bus.blobs, settings.inputs_cache), heartbeat)
        await bus.consume(
            subscription, explorer.handle, stop, max_deliver=MAX_DELIVER, batch=1, on_turn=heartbeat.turned
        )


class Explorer:
    def __init__(self, bus: Bus, inputs: Inputs, heartbeat: Heartbeat | None = None) -> None:
        self._bus, self._inputs = bus, inputs
        self._heartbeat = heartbeat

    async def handle(self, event: Event, delivery: Delivery) -> None:
        if not isinstance(event.payload, CampaignStarted):
            return
        done = await published_ids(self._bus, event.campaign_id)
        if _event_id(event.campaign_id, _key(ExplorationFinished())) in done:
            log.info("already_explored")
            await self._publish(event, [PhaseFinished(phase="explore", outcome="explored")], done)
        elif not await self._explore(event, delivery, done):
            return
        verdicts = {_event_id(event.campaign_id, _key(p)) for p in (HarnessAccepted, HarnessRejected)}
        if not verdicts & done:
            await self._test_harness(event, delivery, done)

    async def _explore(self, event: Event, delivery: Delivery, done: set[str]) -> bool:
        """Explore; False if exploration failed for good (the failure published, the campaign ends)."""
        assert isinstance(event.payload, CampaignStarted)
        await self._publish(event, [PhaseStarted(phase="explore")], done)
        try:
            async with self._in_progress(delivery):
                exploration = await explore(event.payload, await self._inputs.resolve(event.payload))
        except Exception as err:
            if not _final(err, delivery):
                raise
            log.exception("exploration_failed")
            failed = PhaseFinished(phase="explore", outcome=f"failed: {err}"[:500])
            await self._publish(event, [failed], done)
            return False
        await self._publish(event, await self._results(exploration), done)
        log.info("explored", findings=len(exploration.findings), baselines=len(exploration.baselines))
        return True

    async def _test_harness(self, event: Event, delivery: Delivery, done: set[str]) -> None:
        """Phase 2: review, attack, then accept or reject; a last failed try rejects, naming the error."""
        assert isinstance(event.payload, CampaignStarted)
        await self._publish(event, [PhaseStarted(phase="harness")], done)
        digest = "unknown: the adapter could not be had"
        try:
            inputs = await self._inputs.resolve(event.payload)
            digest = inputs.domain.harness_digest()
            graded = {
                baseline.name
                for baseline in inputs.domain.manifest.baselines
                if _event_id(event.campaign_id, f"{BaselineEvaluated.TYPE}:{baseline.name}") in done
            }
            async with self._in_progress(delivery):
                with tree.scratch("alphalab-harness-") as scratch:
                    payloads = await accept(event.payload, inputs, scratch, graded)
        except Exception as err:
            if not _final(err, delivery):
                raise
            log.exception("harness_testing_failed")
            rejected = HarnessRejected(
                harness_digest=digest, reasons=(f"testing the harness failed: {err}"[:500],)
            )
            await self._publish(event, [rejected, PhaseFinished(phase="harness", outcome="failed")], done)
            return
        verdict = payloads[-1]
        outcome = "accepted" if isinstance(verdict, HarnessAccepted) else "rejected"
        await self._publish(event, [*payloads, PhaseFinished(phase="harness", outcome=outcome)], done)
        log.info("harness_tested", outcome=outcome)

    def _in_progress(self, delivery: Delivery) -> contextlib.AbstractAsyncContextManager[None]:
        """While a long step runs: keep the message (JetStream) and show progress (the heartbeat)."""

        async def tick() -> None:
            if self._heartbeat is not None:
                self._heartbeat.turned()
            await delivery.in_progress()

        return every(ACK_WAIT_S / 3, tick)

    async def _results(self, exploration: Exploration) -> list[Payload]:
        """The events of a finished exploration, its report and plots stored as blobs first."""
        plots = {name: await self._bus.blobs.put(png) for name, png in exploration.plots.items()}
        finished = ExplorationFinished(
            report_digest=await self._bus.blobs.put(exploration.report.encode()),
            plots=plots,
            findings=exploration.findings,
        )
        outcome = (
            f"{len(exploration.findings)} findings, {len(plots)} plots, "
            f"{len(exploration.baselines)} baselines"
        )
        return [*exploration.baselines, finished, PhaseFinished(phase="explore", outcome=outcome)]

    async def _publish(self, cause: Event, payloads: Sequence[Payload], done: set[str]) -> None:
        """Publish, in order, each of `payloads` whose deterministic id is not in the stream yet."""
        for payload in payloads:
            event_id = _event_id(cause.campaign_id, _key(payload))
            if event_id in done:
                continue
            await self._bus.publish(
                Event.new(
                    payload,
                    campaign_id=cause.campaign_id,
                    producer=self._bus.producer,
                    caused_by=cause,
                    event_id=event_id,
                )
            )
            done.add(event_id)


async def published_ids(bus: Bus, campaign_id: str) -> set[str]:
    """The ids of the events of the types the explorer publishes that a campaign already has."""
    ids: set[str] = set()
    for event_type in _OWN_TYPES:
        subject, seq = subject_for(campaign_id, event_type), 1
        while True:
            try:
                msg = await bus.js.get_msg(STREAM, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            with contextlib.suppress(MalformedEvent):  # its rejection record is someone else's business
                ids.add(decode(msg.data or b"").event_id)
            seq = (msg.seq or seq) + 1
    return ids


def _key(payload: Payload | type[Payload]) -> str:
    """What makes an explorer event unique within its campaign: its type, and a baseline's name."""
    if isinstance(payload, PhaseStarted | PhaseFinished):
        return f"{payload.TYPE}:{payload.phase}"
    name = getattr(payload, "name", None)
    return f"{payload.TYPE}:{name}" if name is not None else payload.TYPE


def _event_id(campaign_id: str, key: str) -> str:
    digest = hashlib.sha256(f"{SUBJECT_PREFIX}/{campaign_id}/{key}".encode()).hexdigest()
    return f"explore-{digest[:40]}"


def _final(err: Exception, delivery: Delivery) -> bool:
    """Whether a failure ends the campaign now: a setting or file the operator must fix (trying again
    cannot help), or the last allowed try; an outage never is."""
    if bus_away(err):
        return False
    return isinstance(err, ConfigError) or delivery.failures + 1 >= MAX_DELIVER
