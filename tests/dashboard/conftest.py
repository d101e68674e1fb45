"""A real `alphalab dashboard` process on a free port, and a reader of its server-sent events."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from shared.bus import Bus
from shared.events import Event
from tests.conftest import service_env
from tests.factories import PRODUCER

ALPHALAB = str(Path(sys.executable).with_name("alphalab"))
CHROMIUM = shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dashboard:
    """`alphalab dashboard ...` as its own process; `url` once it answers."""

    def __init__(self, home: Path, *args: str, nats_url: str = "", host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        env = service_env(nats_url, home)
        if not nats_url:
            env.pop("ALPHALAB_NATS_URL")
        argv = [ALPHALAB, "dashboard", "--host", host, "--port", str(self.port), *args]
        self.log = home / "dashboard.log"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(argv, env=env, stdout=sink, stderr=sink)

    def __enter__(self) -> Dashboard:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(self.url + "/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the dashboard did not answer within 30 s: {self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def stream_messages(
    url: str, count: int, last_event_id: int | None = None, timeout: float = 20
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The first `count` messages of a server-sent event stream, as (id, data)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            fields = dict(item.split(": ", 1) for item in block if not item.startswith(":"))
            block = []
            if "id" in fields:
                yield int(fields["id"]), json.loads(fields["data"])
                count -= 1
                if count == 0:
                    return


def publish(url: str, events: list[Event]) -> None:
    """Publish in a thread of its own: Playwright's sync API keeps an event loop running in a browser
    test's thread, and a plain test's thread has none."""

    async def publish_all() -> None:
        bus = await Bus.connect(url, PRODUCER)
        try:
            await bus.publish_many(events)
        finally:
            await bus.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, publish_all()).result()
