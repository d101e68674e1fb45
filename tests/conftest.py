"""Fixtures shared by all tests: a real nats-server with JetStream per test, and helpers to wait on it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from shared.bus import STREAM, Bus
from shared.events import Event, Producer, decode, subject_for
from shared.nats_server import EmbeddedNats

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh nats-server (JetStream, file store in a temp dir) on a random loopback port."""
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_server.url, Producer(service="test", instance="pytest"))
    yield connected
    await connected.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def service_env(nats_url: str, home: Path) -> dict[str, str]:
    """The environment a service process gets: this one, minus stray ALPHALAB_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    env.update(ALPHALAB_NATS_URL=nats_url, ALPHALAB_HOME=str(home), PYTHONPATH=str(ROOT))
    return env


def start_service(name: str, nats_url: str, home: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `python -m services.<name>` as its own process, logging to `log`."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=service_env(nats_url, home),
            stdout=sink,
            stderr=sink,
            cwd=ROOT,
        )


async def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll an (async or sync) predicate until it is truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def stream_events(bus: Bus, campaign_id: str, event_type: str) -> list[Event]:
    """Every event of one type in one campaign, in stream order, read from the stream itself."""
    found, seq = [], 1
    while True:
        try:
            msg = await bus.js.get_msg(
                STREAM, seq=seq, subject=subject_for(campaign_id, event_type), next=True
            )
        except NotFoundError:
            return found
        found.append(decode(msg.data or b""))
        seq = (msg.seq or seq) + 1
