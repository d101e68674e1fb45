"""The Strategist process: follows the event stream and publishes what `policy.decide` says.

Its only state is the projection of the stream, rebuilt from the first event on every start; the
Optuna study is rebuilt from that projection for every decision. So it can be killed at any moment.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from services.strategist.policy import decide
from shared.bus import Bus
from shared.heartbeat import alive
from shared.live import LiveProjection, follow, publish_decisions, running_campaigns
from shared.settings import Settings

__all__ = ["run"]

log = structlog.get_logger(__name__)
TICK_S = 0.5


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    await follow(bus, stop, TICK_S, lambda projection: _decide_all(bus, projection))


async def _decide_all(bus: Bus, projection: LiveProjection) -> None:
    workers = len(await alive(bus, "worker"))
    for view, domain in running_campaigns(projection.lab):
        decisions = decide(view, domain.manifest.search_space, workers=workers, now=datetime.now(UTC))
        if not decisions:
            continue
        await publish_decisions(bus, projection, view.campaign_id, decisions)
        log.info("decided", campaign_id=view.campaign_id, events=[d.key for d in decisions], workers=workers)
