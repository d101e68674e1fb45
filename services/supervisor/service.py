"""The Supervisor process: every second, inspects each running campaign and publishes what it finds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from services.supervisor.rules import Thresholds, inspect
from shared.bus import Bus
from shared.heartbeat import HEARTBEAT_TTL_S, alive, beat_of
from shared.inputs import Inputs
from shared.live import LiveProjection, follow, publish_decisions, running_campaigns
from shared.settings import Settings
from shared.snapshots import SnapshotStore, Snapshotter

__all__ = ["run"]

log = structlog.get_logger(__name__)
TICK_S = 1.0


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    inputs = Inputs(bus.blobs, settings.inputs_cache)
    snapshotter = Snapshotter(SnapshotStore(bus), settings.snapshot_every)

    async def step(projection: LiveProjection) -> None:
        await _inspect_all(bus, projection, inputs)
        await snapshotter.tick(projection)  # the one service that snapshots the lab for the others

    await follow(bus, stop, TICK_S, step)


async def _inspect_all(bus: Bus, projection: LiveProjection, inputs: Inputs) -> None:
    beats = await alive(bus)
    for view, domain in await running_campaigns(projection.lab, inputs):
        running_on = {c.worker for c in view.kanban.cards.values() if c.state == "running" and c.worker}
        live_workers = {w for w in running_on if await beat_of(bus, "worker", w) is not None}
        budget = domain.manifest.budget
        patience = view.budget.limits.patience
        limits = Thresholds(
            run_seconds=budget.run_seconds,
            silent_after_seconds=HEARTBEAT_TTL_S,
            no_progress_runs=2 * patience if patience else None,
        )
        now = datetime.now(UTC)
        findings = inspect(view, live_workers=live_workers, now=now, limits=limits, beats=beats)
        if not findings:
            continue
        await publish_decisions(bus, projection, view.campaign_id, findings)
        log.warning("intervened", campaign_id=view.campaign_id, findings=[f.key for f in findings])
