"""A campaign on a three-node JetStream cluster on loopback, one node SIGKILLed mid-run for good: the
other two keep quorum, every client fails over, and the campaign finishes with nothing lost or doubled."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import pytest
from nats.js import api
from rich.console import Console

from alphalab.campaign import run_campaign
from alphalab.chaos import verify
from alphalab.stack import Stack
from shared.blobs import BLOB_BUCKET
from shared.bus import DUPLICATE_WINDOW_S, STREAM
from shared.events import SUBJECT_PREFIX
from shared.heartbeat import BUCKET, HEARTBEAT_TTL_S
from shared.nats_server import find_binary
from shared.projections import CampaignView, snapshot
from shared.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _cluster(root: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    ports = [(_free_port(), _free_port()) for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{route}" for _, route in ports)
    nodes = []
    try:
        for index, (port, route) in enumerate(ports, start=1):
            log = root / f"n{index}.log"
            command = [
                find_binary(), "-js", "-n", f"n{index}", "-a", "127.0.0.1", "-p", str(port),
                "-sd", str(root / f"n{index}"), "--cluster_name", "alphalab",
                "--cluster", f"nats://127.0.0.1:{route}", "--routes", routes, "-l", str(log),
            ]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            nodes.append((process, port))
        yield nodes
    finally:
        for process, _ in nodes:
            process.kill()
            process.wait()


async def _replicated(url: str) -> None:
    """What an operator of a cluster does first: the stream, heartbeats and blobs with three replicas
    (services leave existing ones as they are). Retried until the cluster has elected its leaders."""
    nc = await nats.connect(url.split(","), connect_timeout=2, max_reconnect_attempts=-1)
    js = nc.jetstream(timeout=5)
    deadline = time.monotonic() + 60
    stream = api.StreamConfig(
        name=STREAM, subjects=[f"{SUBJECT_PREFIX}.>"], storage=api.StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S, max_msg_size=-1, num_replicas=3,
    )  # fmt: skip
    while True:
        try:
            await js.add_stream(stream)
            await js.create_key_value(bucket=BUCKET, ttl=HEARTBEAT_TTL_S, history=1, replicas=3)
            await js.create_object_store(BLOB_BUCKET, config=api.ObjectStoreConfig(replicas=3))
            break
        except (nats.errors.Error, nats.js.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    await nc.close()


class _KillOneNode:
    """SIGKILLs the first node for good once a worker is running a proposal."""

    def __init__(self, node: subprocess.Popen[bytes]) -> None:
        self.node = node
        self.killed = False

    def __call__(self, stack: Stack, view: CampaignView) -> None:
        if not self.killed and any(c.state == "running" for c in view.kanban.cards.values()):
            self.node.kill()
            self.killed = True


@pytest.mark.timeout(900)
def test_a_campaign_finishes_on_a_cluster_that_loses_a_node(tmp_path: Path) -> None:
    with _cluster(tmp_path) as nodes:
        url = ",".join(f"nats://127.0.0.1:{port}" for _, port in nodes)
        asyncio.run(_replicated(url))
        settings = Settings(home=tmp_path / "lab", nats_url=url, log_level="info")
        hook = _KillOneNode(nodes[0][0])
        quiet = Console(quiet=True)
        result = run_campaign(
            settings, "traffic", data=None, workers=2, experiments=4, console=quiet, on_tick=hook
        )
        assert hook.killed
        failures, _ = verify(settings, result.campaign_id, snapshot(result.view), nats_url=url)
    assert not failures, failures
    assert result.view.leaderboard.history and result.view.status == "finished"
