"""`alphalab pause|resume|stop|cancel` against a real NATS stream: the events name who and why, and an
action the campaign cannot take is refused in one line, publishing nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from shared.bus import Bus
from shared.events import Event
from shared.live import LiveProjection, fold_stream
from shared.nats_server import EmbeddedNats
from tests.conftest import service_env
from tests.dashboard.conftest import ALPHALAB
from tests.factories import PRODUCER, small_campaign


def _stream(url: str, publish: list[Event] | None = None) -> list[Event]:
    """Publish `publish`, then every event of the stream."""

    async def go() -> list[Event]:
        bus = await Bus.connect(url, PRODUCER)
        seen: list[Event] = []
        try:
            if publish:
                await bus.publish_many(publish)
            projection = LiveProjection(bus, on_event=seen.append)
            await projection.start()
            await projection.settle()
            await projection.stop()
        finally:
            await bus.close()
        return seen

    return asyncio.run(go())


def test_operator_actions_are_events_naming_who_and_why(nats_server: EmbeddedNats, home: Path) -> None:
    _stream(nats_server.url, small_campaign("c1", runs=1)[:3])  # started, a baseline, p0 proposed
    env = service_env(nats_server.url, home)

    def alphalab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ALPHALAB, *args], env=env, capture_output=True, text=True, timeout=60)

    paused = alphalab("pause", "--by", "ada", "--reason", "the GPU is needed")  # the running campaign
    assert paused.returncode == 0 and "campaign-paused of campaign c1 by ada" in paused.stdout, paused.stderr
    again = alphalab("pause", "c1", "--by", "bob")
    assert again.returncode == 2 and "already paused by ada" in again.stderr
    assert alphalab("cancel", "p9", "--campaign", "c1").returncode == 2
    assert alphalab("cancel", "p0", "--by", "ada").returncode == 0
    assert alphalab("resume", "c1", "--by", "ada").returncode == 0
    assert alphalab("hint", "try model=mlp", "--by", "ada").returncode == 0
    proposed = alphalab("propose", "--config", '{"model": "mlp"}', "--hypothesis", "mlp wins", "--by", "ada")
    assert proposed.returncode == 0, proposed.stderr
    assert "not JSON" in alphalab("propose", "--config", "{model").stderr
    assert "text" in alphalab("hint", "").stderr  # an empty hint is refused naming the field
    assert alphalab("stop", "c1", "--by", "ada", "--reason", "enough").returncode == 0

    acted = [e for e in _stream(nats_server.url) if getattr(e.payload, "by", "")]
    assert [e.type for e in acted] == [
        "campaign-paused", "proposal-cancelled", "campaign-resumed", "hint-given", "proposal-submitted",
        "campaign-stop-requested",
    ]  # fmt: skip
    assert acted[4].payload.config == {"model": "mlp"} and acted[4].payload.hypothesis == "mlp wins"
    assert {e.payload.by for e in acted} == {"ada"} and acted[0].payload.reason == "the GPU is needed"
    view = asyncio.run(_view(nats_server.url))
    assert view.kanban.cards["p0"].state == "cancelled" and view.stop_requested.reason == "enough"


async def _view(url: str):  # type: ignore[no-untyped-def]
    bus = await Bus.connect(url, PRODUCER)
    try:
        return (await fold_stream(bus, campaign_id="c1")).campaigns["c1"]
    finally:
        await bus.close()
