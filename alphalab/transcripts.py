"""Finding agent turns and their transcripts: `alphalab transcript RUN_OR_AGENT`.

Turns are found in the ledger; transcripts are blobs, copied into the campaign folder when a campaign
ends (`transcripts/<digest>.json`), else read from the bus when ALPHALAB_NATS_URL is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from shared.errors import ConfigError
from shared.events import AgentTurn, Event, Producer

__all__ = ["matching_turns", "transcript_file", "transcripts_of"]


def matching_turns(events: Iterable[Event], who: str) -> list[Event]:
    """Agent turns about `who`: a run id, a proposal id (its runs), an agent instance or a role."""
    found = []
    for event in events:
        turn = event.payload
        if isinstance(turn, AgentTurn) and who in (turn.agent, turn.role, turn.agent.rsplit("-", 1)[0]):
            found.append(event)
    return found


def transcript_file(folder: Path, digest: str) -> Path:
    return folder / "transcripts" / f"{digest.removeprefix('sha256:')}.json"


def transcripts_of(turns: list[Event], home: Path, nats_url: str | None) -> list[bytes]:
    """Each turn's transcript, from its campaign folder or, failing that, the bus."""
    documents: list[bytes | None] = []
    for event in turns:
        assert isinstance(event.payload, AgentTurn)
        digest = event.payload.transcript_digest
        path = transcript_file(home / "campaigns" / event.campaign_id, digest) if digest else None
        documents.append(path.read_bytes() if path is not None and path.exists() else None)
    missing = [event for event, doc in zip(turns, documents, strict=True) if doc is None]
    if missing:
        if not nats_url:
            raise ConfigError(
                f"{len(missing)} transcripts are not in the campaign folder (the campaign has not ended); "
                "set ALPHALAB_NATS_URL to read them from the running lab"
            )
        fetched = iter(asyncio.run(_fetch(nats_url, missing)))
        documents = [doc if doc is not None else next(fetched) for doc in documents]
    return [doc for doc in documents if doc is not None]


async def _fetch(nats_url: str, turns: list[Event]) -> list[bytes]:
    from shared.bus import Bus

    bus = await Bus.connect(nats_url, Producer(service="cli", instance="transcript"))
    try:
        return [await bus.blobs.get(t.payload.transcript_digest or "") for t in turns]  # type: ignore[attr-defined]
    finally:
        await bus.close()
