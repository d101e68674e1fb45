"""The campaign's files the page opens: agent transcripts, a run's code and its diff against the parent,
the data report and its plots. Live they come from the blob store; in an audit, from the campaign
folder the CLI filled when the campaign ended (home/campaigns/<id>/).

Only what the campaign's own events name is served, and only as of the moment asked about: a digest no
event of the campaign up to that position mentions is not found, whatever the store holds (a page
travelled back in time lists no turn, run or report from later, and cannot open one either).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alphalab.artifacts import blob_file
from dashboard.timeline import Moment, Timeline
from shared import bundles
from shared.agents.transcript import render
from shared.blobs import BlobMissing
from shared.bus import Bus
from shared.events import ExplorationFinished

__all__ = ["Files", "NotFound"]


class NotFound(Exception):
    pass


class Files:
    def __init__(self, timeline: Timeline, home: Path, bus: Bus | None) -> None:
        self.timeline, self.home, self.bus = timeline, home, bus

    def turns(self, moment: Moment, campaign_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The campaign's agent turns as of `moment`, newest first (at most `limit`)."""
        view = moment.lab.campaigns.get(campaign_id)
        records = view.turns[-limit:] if view else []
        return [
            {"event_id": r.event_id, "at": r.at.isoformat(), "transcript": r.turn.transcript_digest,
             **r.turn.model_dump(mode="json", include={"role", "turn", "agent", "purpose", "summary", "model",
                                                       "tool_calls", "usd", "ended"})}
            for r in reversed(records)
        ]  # fmt: skip

    async def transcript(self, moment: Moment, campaign_id: str, digest: str) -> str:
        view = moment.lab.campaigns.get(campaign_id)
        if view is None or digest not in {r.turn.transcript_digest for r in view.turns}:
            raise NotFound(f"campaign {campaign_id} has no transcript {digest}")
        return render(await self._blob(campaign_id, "transcripts", digest))

    async def code(self, moment: Moment, campaign_id: str, run_id: str) -> tuple[dict[str, str], str]:
        """The files a run graded and their diff against the candidate it was changed from."""
        attempt = next(
            (a for d in moment.details.campaigns.get(campaign_id, {}).values() for a in d.attempts
             if a.run_id == run_id),
            None,
        )  # fmt: skip
        if attempt is None:
            raise NotFound(f"campaign {campaign_id} has no run {run_id} (as of that position)")
        if attempt.code_digest is None:
            raise NotFound(f"run {run_id} graded the adapter's own candidate: no code of its own")
        child = await self._blob(campaign_id, "candidates", attempt.code_digest)
        parent = (
            await self._blob(campaign_id, "candidates", attempt.parent_digest)
            if attempt.parent_digest
            else None
        )
        return bundles.files_of(child), bundles.diff(parent, child)

    async def report(self, moment: Moment, campaign_id: str) -> dict[str, Any]:
        explored = self._exploration(moment, campaign_id)
        folder = self._folder(campaign_id)
        if (folder / "report.md").is_file():
            text = (folder / "report.md").read_text()
        elif explored.report_digest and self.bus is not None:
            text = (await self._store(explored.report_digest)).decode()
        else:
            raise NotFound("the data report is neither in the campaign folder nor in a live lab")
        return {"markdown": text, "plots": sorted(explored.plots)}

    async def plot(self, moment: Moment, campaign_id: str, name: str) -> bytes:
        explored = self._exploration(moment, campaign_id)
        if name not in explored.plots:
            raise NotFound(f"the data report has no plot {name}")
        path = self._folder(campaign_id) / "plots" / name
        return path.read_bytes() if path.is_file() else await self._store(explored.plots[name])

    def _exploration(self, moment: Moment, campaign_id: str) -> ExplorationFinished:
        for position in reversed(self.timeline.of_campaign(campaign_id)):
            payload = self.timeline.events[position - 1].payload
            if position <= moment.position and isinstance(payload, ExplorationFinished):
                return payload
        raise NotFound(f"campaign {campaign_id} has no data report (as of that position)")

    def _folder(self, campaign_id: str) -> Path:
        return self.home / "campaigns" / campaign_id

    async def _blob(self, campaign_id: str, kind: str, digest: str) -> bytes:
        path = blob_file(self._folder(campaign_id), kind, digest)
        return path.read_bytes() if path.is_file() else await self._store(digest)

    async def _store(self, digest: str) -> bytes:
        if self.bus is None:
            raise NotFound(f"{digest} is not in the campaign folder, and this dashboard has no live lab")
        try:
            return await self.bus.blobs.get(digest)
        except BlobMissing:
            raise NotFound(f"the blob store has lost {digest}") from None
