"""A campaign's blobs in its folder: agent transcripts and changed candidates' bundles.

They are copied from the blob store when a campaign ends (`transcripts/<digest>.json`,
`candidates/<digest>.json`); `alphalab transcript` and `alphalab diff` read them there, or from the
bus when ALPHALAB_NATS_URL is set and the campaign is still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from shared.errors import ConfigError
from shared.events import AgentTurn, Event, Producer

__all__ = ["blob_file", "matching_turns", "read_blobs"]


def matching_turns(events: Iterable[Event], who: str) -> list[Event]:
    """Agent turns about `who` (a run id, a proposal id: its runs, an agent instance or a role) in
    the latest campaign that has any (run and proposal ids repeat across campaigns)."""
    found = []
    for event in events:
        turn = event.payload
        if isinstance(turn, AgentTurn) and who in (turn.agent, turn.role, turn.agent.rsplit("-", 1)[0]):
            found.append(event)
    latest = found[-1].campaign_id if found else None
    return [event for event in found if event.campaign_id == latest]


def blob_file(folder: Path, kind: str, digest: str) -> Path:
    """Where a blob of `kind` (transcripts, candidates) lies in a campaign's folder."""
    return folder / kind / f"{digest.removeprefix('sha256:')}.json"


def read_blobs(folder: Path, kind: str, digests: list[str], nats_url: str | None) -> list[bytes]:
    """The blobs, from the campaign folder or, for those not there yet, from the bus."""
    found = {d: blob_file(folder, kind, d) for d in digests}
    missing = [d for d, path in found.items() if not path.exists()]
    fetched: dict[str, bytes] = {}
    if missing:
        if not nats_url:
            raise ConfigError(
                f"{len(missing)} {kind} are not in {folder} (the campaign has not ended); "
                "set ALPHALAB_NATS_URL to read them from the running lab"
            )
        fetched = dict(zip(missing, asyncio.run(_fetch(nats_url, missing)), strict=True))
    return [fetched[d] if d in fetched else found[d].read_bytes() for d in digests]


async def _fetch(nats_url: str, digests: list[str]) -> list[bytes]:
    from shared.bus import Bus

    bus = await Bus.connect(nats_url, Producer(service="cli", instance="artifacts"))
    try:
        return [await bus.blobs.get(digest) for digest in digests]
    finally:
        await bus.close()
