"""The NATS configs under infra/nats, exercised with real nats-server processes (no mocks).

Single node: infra/nats/single.conf as shipped, with only -a/-p/-m/-sd given on the command line (loopback,
free ports, a temp store). Cluster: temporary copies of infra/nats/cluster/n*.conf (and accounts.conf) in
which the nine documented ports are mapped to free ones and store_dir to temp dirs; everything else,
including each node's routes block, is the shipped text. Passwords are random per test session and
reach the servers only through their environment, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from shared.blobs import BLOB_BUCKET
from shared.bus import STREAM, Bus
from shared.events import (
    CampaignStarted,
    Event,
    EventRejected,
    Producer,
    ProposalCreated,
    RunStarted,
    payload_types,
)
from shared.heartbeat import BUCKET as HEARTBEAT_BUCKET
from shared.heartbeat import Heartbeat, alive
from shared.live import LiveProjection, fold_stream
from shared.nats_server import find_binary
from shared.reader import StreamReader
from shared.snapshots import SNAPSHOT_BUCKET, SnapshotStore
from tests.conftest import service_env, start_service, wait_for
from tests.services.fake_gpu import fake_smi

ROOT = Path(__file__).resolve().parents[2]
NATS_DIR = ROOT / "infra" / "nats"
SINGLE = NATS_DIR / "single.conf"
NODES = [NATS_DIR / "cluster" / f"n{i}.conf" for i in (1, 2, 3)]

USERS = ("ledger", "strategist", "worker", "explorer", "supervisor", "operator", "cli", "sys")
PASSWORDS = {user: "p" + secrets.token_hex(16) for user in USERS}

# Which event types each user may publish (accounts.conf documents the same table).
EMITS: dict[str, set[str]] = {
    "ledger": {"event-rejected"},
    "strategist": {
        "campaign-started",
        "phase-started",
        "phase-finished",
        "proposal-created",
        "proposal-cancelled",
        "playbook-revised",
        "campaign-finished",
        "budget-exhausted",
        "llm-call-finished",
        "agent-turn",
        "submission-refused",
        "event-rejected",
    },
    "worker": {
        "run-started",
        "run-finished",
        "run-failed",
        "run-analyzed",
        "llm-call-finished",
        "agent-turn",
        "event-rejected",
    },
    "explorer": {
        "exploration-finished",
        "harness-built",
        "harness-reviewed",
        "harness-tested",
        "harness-accepted",
        "harness-rejected",
        "baseline-evaluated",
        "llm-call-finished",
        "agent-turn",
        "event-rejected",
        # Not in the brief's table: services/explorer/handlers.py announces its own "explore" phase.
        "phase-started",
        "phase-finished",
    },
    "supervisor": {"stall-detected", "intervention-issued", "event-rejected"},
    "operator": {
        "campaign-started",  # `alphalab start` on a running lab
        "campaign-paused",
        "campaign-resumed",
        "campaign-stop-requested",
        "proposal-cancelled",
        "hint-given",
        "proposal-submitted",
    },
    "cli": set(),
}

# The durable pull consumer each service owns (the DURABLE constants of services/*; strategist and
# supervisor have none yet and get one named after themselves).
DURABLES = {
    "ledger": "ledger",
    "strategist": "strategist",
    "worker": "workers",
    "explorer": "explorer",
    "supervisor": "supervisor",
}
# Who may create ordered consumers on the event stream (LiveProjection) and who keeps a heartbeat.
ORDERED = {"strategist", "worker", "supervisor", "operator"}
HEARTBEAT = {"strategist", "worker", "explorer", "supervisor"}

START_TIMEOUT = 15.0
OP_TIMEOUT = 0.5  # for requests the server is expected to drop (permission denied): no reply comes


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("NATS_") and k.endswith("_PASSWORD"))}
    env.update({f"NATS_{user.upper()}_PASSWORD": password for user, password in PASSWORDS.items()})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def url(user: str, port: int) -> str:
    return f"nats://{user}:{PASSWORDS[user]}@127.0.0.1:{port}"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    monitor: int
    args: list[str] = field(default_factory=list)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "Server is ready" in text:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"nats-server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def violations(self) -> list[str]:
        return re.findall(r'Publish Violation - Subject "([^"]+)"', self.log.read_text(errors="replace"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Stop, then start again on the same ports and store (its log starts afresh)."""
        self.stop()
        self.process = launch(self.args, self.log, self.port, self.monitor).process
        self.wait_ready(time.monotonic() + START_TIMEOUT)


def launch(args: list[str], log: Path, port: int, monitor: int) -> Server:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [find_binary(), *args], env=server_env(), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
        )
    return Server(process, log, port, monitor, args)


@contextmanager
def single_server(folder: Path) -> Iterator[Server]:
    """infra/nats/single.conf on loopback, free ports, its store and log under `folder`."""
    port, monitor = free_port(), free_port()
    args = [
        "-c",
        str(SINGLE),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(monitor),
        "-sd",
        str(folder / "js"),
    ]
    server = launch(args, folder / "nats.log", port, monitor)
    try:
        server.wait_ready(time.monotonic() + START_TIMEOUT)
        yield server
    finally:
        server.stop()


@pytest.fixture
def single(tmp_path: Path) -> Iterator[Server]:
    with single_server(tmp_path) as server:
        yield server


@dataclass
class Conn:
    nc: Client
    errors: list[str] = field(default_factory=list)

    async def denied(self, subject: str, timeout: float = 3.0) -> bool:
        """Whether the server reports a publish permission violation for `subject` within `timeout`.

        It polls: the server's -ERR can arrive after the PONG of a flush (nats-py may write the PING
        ahead of publishes still in its pending buffer), so a flush alone does not order them.
        """
        deadline = time.monotonic() + timeout
        needle = f'publish to "{subject.lower()}"'
        while not any(needle in e for e in self.errors):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


@asynccontextmanager
async def connect(user: str, port: int) -> AsyncIterator[Conn]:
    """A plain client (no reconnect) that records the server's asynchronous errors."""
    conn = Conn(nc=None)  # type: ignore[arg-type]

    async def on_error(err: Exception) -> None:
        conn.errors.append(str(err).lower())

    conn.nc = await nats.connect(
        url(user, port), connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, error_cb=on_error
    )
    try:
        yield conn
    finally:
        await conn.nc.close()


async def bus_as(user: str, port: int) -> Bus:
    # Bus.connect retries forever once started; a test must not hang on a server that is gone.
    return await asyncio.wait_for(Bus.connect(url(user, port), Producer(service=user, instance="pytest")), 10)


def event(payload: object, producer: str, campaign: str = "c1") -> Event:
    return Event.new(payload, campaign_id=campaign, producer=Producer(service=producer, instance="pytest"))  # type: ignore[arg-type]


def rejected(producer: str) -> EventRejected:
    return EventRejected(
        reason="test", subject="x", size=0, sha256="sha256:" + "0" * 64, rejected_by=producer
    )


# ---- (a) the files parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("conf", [SINGLE, *NODES], ids=lambda p: p.name)
def test_config_file_is_valid(conf: Path) -> None:
    """`nats-server -t -c <file>` accepts each shipped config (with the password variables set)."""
    result = subprocess.run(
        [find_binary(), "-t", "-c", str(conf)], env=server_env(), capture_output=True, timeout=20
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()


def test_config_refuses_a_missing_password_variable() -> None:
    """An unset password variable stops the server at start (it does not fall back to no password)."""
    env = server_env()
    del env["NATS_WORKER_PASSWORD"]
    result = subprocess.run(
        [find_binary(), "-t", "-c", str(SINGLE)], env=env, capture_output=True, timeout=20
    )
    assert result.returncode != 0
    assert "NATS_WORKER_PASSWORD" in (result.stderr + result.stdout).decode()


def test_cluster_node_configs_agree() -> None:
    """Documented ports, distinct names and stores, one cluster, every node routing to all three."""
    seen_names, seen_stores = set(), set()
    for i, conf in enumerate(NODES):
        text = conf.read_text()
        assert re.search(rf"^listen: 127\.0\.0\.1:{4222 + i}$", text, re.M), conf
        assert re.search(rf"^\s+listen: 127\.0\.0\.1:{6222 + i}$", text, re.M), conf
        assert re.search(rf"^http: 127\.0\.0\.1:{8222 + i}$", text, re.M), conf
        assert re.findall(r"nats-route://127\.0\.0\.1:(\d+)", text) == ["6222", "6223", "6224"], conf
        assert re.search(r"^\s+name: alphalab$", text, re.M), conf
        assert re.search(r'^include "\.\./accounts\.conf"$', text, re.M), conf
        seen_names.add(re.search(r"^server_name: (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
        seen_stores.add(re.search(r'store_dir: "([^"]+)"', text).group(1))  # type: ignore[union-attr]
    assert len(seen_names) == 3 and len(seen_stores) == 3
    assert re.search(r'^include "accounts\.conf"$', SINGLE.read_text(), re.M)


def test_accounts_table_covers_every_event_type() -> None:
    """Every event type in the catalogue has an emitter (a new type must be given to a service)."""
    emitted = set().union(*EMITS.values())
    assert emitted == set(payload_types()), set(payload_types()) ^ emitted


# ---- (b) the ledger: stream, durable consumer, fetch ------------------------------------------------


async def test_ledger_creates_stream_consumes_and_stores_blobs(single: Server) -> None:
    bus = await bus_as("ledger", single.port)  # Bus.connect creates ALPHALAB_EVENTS
    try:
        info = await bus.js.stream_info(STREAM)
        assert info.config.subjects == ["alphalab.events.>"]
        ack = await bus.publish(event(rejected("ledger"), "ledger"))
        assert ack.stream == STREAM and ack.seq == 1

        # As services/ledger/writer.py does: recreate the "ledger" durable after its stored position.
        sub = await bus.subscription("ledger", ack_all=True, max_deliver=100, start_after=0)
        msgs = await sub.fetch(10, timeout=2)
        assert [m.subject for m in msgs] == ["alphalab.events.c1.event-rejected"]
        await msgs[-1].ack_sync(timeout=2)  # the ack needs $JS.ACK.ALPHALAB_EVENTS.ledger.>
        consumer = await bus.js.consumer_info(STREAM, "ledger")
        assert consumer.ack_floor.stream_seq == 1

        # The blob store (Bus.reject keeps a rejected message's bytes there).
        digest = await bus.blobs.put(b"rejected bytes")
        assert await bus.blobs.get(digest) == b"rejected bytes"
    finally:
        await bus.close()
    assert single.violations() == []


# ---- (c) the worker: its own events only, its own consumer only -------------------------------------


async def test_worker_publishes_run_events_but_not_proposals(single: Server) -> None:
    await (await bus_as("ledger", single.port)).close()  # the ledger creates the stream
    bus = await bus_as("worker", single.port)  # its Bus.connect updates the stream: permitted
    try:
        ack = await bus.publish(event(RunStarted(run_id="r1", proposal_id="p1", worker="w1"), "worker"))
        assert ack.stream == STREAM and not ack.duplicate
    finally:
        await bus.close()

    async with connect("worker", single.port) as worker:
        proposal = event(ProposalCreated(proposal_id="p1", config={}), "worker")
        with pytest.raises(nats.errors.TimeoutError):  # the server drops it: no ack ever comes
            await worker.nc.jetstream().publish(proposal.subject, b"{}", timeout=OP_TIMEOUT)
        assert await worker.denied("alphalab.events.c1.proposal-created")
    assert single.violations() == ["alphalab.events.c1.proposal-created"]
    async with connect("ledger", single.port) as ledger:
        info = await ledger.nc.jetstream().stream_info(STREAM)
        assert info.state.messages == 1  # only run-started was stored


async def test_worker_owns_only_its_durable(single: Server) -> None:
    ledger = await bus_as("ledger", single.port)
    await ledger.subscription("ledger", ack_all=True, start_after=0)
    await ledger.close()
    strategist = await bus_as("strategist", single.port)
    await strategist.publish(event(ProposalCreated(proposal_id="p1", config={}), "strategist"))
    await strategist.close()

    bus = await bus_as("worker", single.port)
    try:
        # As services/worker/service.py does: the shared durable "workers", filtered on proposals.
        own = await bus.subscription("workers", subject="alphalab.events.*.proposal-created", ack_wait=30.0)
        msgs = await own.fetch(1, timeout=2)
        assert msgs[0].subject == "alphalab.events.c1.proposal-created"
        await msgs[0].ack_sync(timeout=2)  # needs $JS.ACK.ALPHALAB_EVENTS.workers.>

        js = bus.nc.jetstream(timeout=OP_TIMEOUT)
        assert (await js.consumer_info(STREAM, "ledger")).name == "ledger"  # reading its state: allowed
        with pytest.raises(nats.errors.TimeoutError):  # fetching from the ledger's consumer: refused
            await (await js.pull_subscribe_bind(durable="ledger", stream=STREAM)).fetch(1, timeout=OP_TIMEOUT)
        with pytest.raises(nats.errors.TimeoutError):  # creating (or updating) it by name: refused
            await js.add_consumer(STREAM, api.ConsumerConfig(name="ledger", durable_name="ledger"))
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_consumer(STREAM, "ledger")
        with pytest.raises(nats.errors.TimeoutError):  # nor may it purge or delete the stream
            await js.purge_stream(STREAM)
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream(STREAM)
    finally:
        await bus.close()
    assert set(single.violations()) == {
        "$JS.API.CONSUMER.MSG.NEXT.ALPHALAB_EVENTS.ledger",
        "$JS.API.CONSUMER.CREATE.ALPHALAB_EVENTS.ledger",
        "$JS.API.CONSUMER.DELETE.ALPHALAB_EVENTS.ledger",
        "$JS.API.STREAM.PURGE.ALPHALAB_EVENTS",
        "$JS.API.STREAM.DELETE.ALPHALAB_EVENTS",
    }


async def test_a_gpu_worker_owns_the_gpu_workers_durable_too(single: Server, tmp_path: Path) -> None:
    """A worker with GPUs (a stand-in nvidia-smi on its PATH) also reads the proposals through the
    durable "gpu-workers" (services/worker/service.py's GPU_DURABLE), under the worker user."""
    gpu_durable, proposals = "gpu-workers", "alphalab.events.*.proposal-created"
    strategist = await bus_as("strategist", single.port)
    await strategist.publish(event(ProposalCreated(proposal_id="p1", config={}), "strategist"))
    await strategist.close()
    bus = await bus_as("worker", single.port)
    try:
        own = await bus.subscription(gpu_durable, subject=proposals, ack_wait=30.0)
        msgs = await own.fetch(1, timeout=2)
        await msgs[0].ack_sync(timeout=2)  # needs $JS.ACK.ALPHALAB_EVENTS.gpu-workers.>
        await bus.js.delete_consumer(STREAM, gpu_durable)
    finally:
        await bus.close()
    assert single.violations() == []

    env = service_env(url("worker", single.port), tmp_path)
    env["PATH"] = f"{fake_smi(tmp_path / 'bin')}:{env['PATH']}"
    log = tmp_path / "worker.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.worker"], env=env, stdout=sink, stderr=sink, cwd=ROOT
        )
    try:
        async with connect("cli", single.port) as cli:
            js = cli.nc.jetstream(timeout=2)

            async def ready() -> bool:
                try:
                    await js.consumer_info(STREAM, gpu_durable)
                    return await _beating(js, "worker")
                except nats.errors.Error:
                    return False

            await wait_for(ready, 60, f"the GPU worker's durable and heartbeat:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(1.5)  # a few turns of its loops
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert '"gpus": [{"index": 0' in log.read_text()  # it found the stand-in's GPUs
    assert single.violations() == []


async def _rewrite_ledger_consumer(user: str, port: int) -> bool:
    """As `user`, ask on the unnamed CONSUMER.CREATE subject to narrow the ledger's consumer's filter;
    True if the ledger's consumer was changed."""
    ledger = await bus_as("ledger", port)
    try:
        await ledger.subscription("ledger", ack_all=True, start_after=0)
        config = (await ledger.js.consumer_info(STREAM, "ledger")).config.as_dict()
        config["filter_subject"] = "alphalab.events.nobody.>"
        config.pop("durable_name", None)  # a durable name here is refused; a bare name is not
        async with connect(user, port) as conn:
            with contextlib.suppress(nats.errors.TimeoutError):
                await conn.nc.request(
                    f"$JS.API.CONSUMER.CREATE.{STREAM}",
                    json.dumps({"stream_name": STREAM, "config": config}).encode(),
                    timeout=OP_TIMEOUT,
                )
        return (await ledger.js.consumer_info(STREAM, "ledger")).config.filter_subject != "alphalab.events.>"
    finally:
        await ledger.close()


@pytest.mark.parametrize("user", ["ledger", "explorer", "cli"])
async def test_users_without_ordered_consumers_cannot_rewrite_the_ledgers_consumer(
    single: Server, user: str
) -> None:
    assert not await _rewrite_ledger_consumer(user, single.port)
    assert single.violations() == [f"$JS.API.CONSUMER.CREATE.{STREAM}"]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="CAVEAT in accounts.conf: LiveProjection's ordered consumers need the unnamed "
    "$JS.API.CONSUMER.CREATE.ALPHALAB_EVENTS, and nats-server accepts a consumer name in that request's "
    "body and updates the named consumer; subject permissions cannot stop it",
)
async def test_a_live_projection_user_cannot_rewrite_the_ledgers_consumer(single: Server) -> None:
    assert not await _rewrite_ledger_consumer("worker", single.port)


async def test_large_blob_round_trip_needs_flow_control(single: Server) -> None:
    """A 6 MB blob: its get uses flow control ($JS.FC.OBJ_alphalab-blobs.>), which must be granted."""
    bus = await bus_as("worker", single.port)
    try:
        data = os.urandom(6_000_000)
        digest = await bus.blobs.put(data)
        assert await asyncio.wait_for(bus.blobs.get(digest), 20) == data
    finally:
        await bus.close()
    assert single.violations() == []


# ---- what the services' shared code does under each user ----------------------------------------------


@pytest.mark.parametrize("user", sorted(ORDERED))
async def test_live_projection_replays_a_large_stream(single: Server, user: str) -> None:
    """LiveProjection (shared/live.py) through an ordered consumer, over 6 MB so flow control is used."""
    async with connect("ledger", single.port) as ledger:
        await (await bus_as("ledger", single.port)).close()
        for _ in range(60):  # not valid events: the projection passes over them, as over any malformed one
            await ledger.nc.publish("alphalab.events.c1.event-rejected", os.urandom(100_000))
        await ledger.nc.flush(timeout=5)
    bus = await bus_as(user, single.port)
    projection = LiveProjection(bus)
    try:
        await projection.start()
        await projection.settle(timeout=20)
        assert projection._folded == 60
    finally:
        await projection.stop()
        await bus.close()
    assert single.violations() == []


async def test_explorer_cannot_start_a_live_projection(single: Server) -> None:
    bus = await bus_as("explorer", single.port)
    try:
        bus.js = bus.nc.jetstream(timeout=OP_TIMEOUT)
        with pytest.raises(nats.errors.TimeoutError):
            await LiveProjection(bus).start()
    finally:
        await bus.close()
    assert single.violations() == [f"$JS.API.CONSUMER.CREATE.{STREAM}"]


async def test_the_operator_starts_a_campaign_on_a_running_lab(single: Server, tmp_path: Path) -> None:
    """`alphalab start` as the operator: the adapter's blob stored and `campaign-started` published,
    with no permission refused."""
    from alphalab.brain import Brain
    from alphalab.campaign import announce, new_campaign

    strategist = await bus_as("strategist", single.port)  # a running lab has made its stream and buckets
    await strategist.blobs.put(b"the bucket exists")
    await strategist.close()
    operator = await asyncio.wait_for(
        Bus.connect(
            url("operator", single.port), Producer(service="cli", instance="start"), ensure_stream=False
        ),
        10,
    )
    try:
        campaign_id, start = new_campaign("traffic", data=None, experiments=2, brain=Brain())
        await announce(operator, campaign_id, start)
        [started] = (await fold_stream(operator, campaign_id=campaign_id)).campaigns.values()
        assert started.adapter_digest and await operator.blobs.get(started.adapter_digest)
    finally:
        await operator.close()
    assert single.violations() == []


async def test_only_the_supervisor_writes_snapshots_and_the_services_start_from_them(single: Server) -> None:
    """shared/snapshots.py: a snapshot could make a service fold from any state, so only the supervisor
    may write one; the strategist and the workers start from it."""
    strategist = await bus_as("strategist", single.port)
    started = CampaignStarted(domain="toy", objective="o", metric="m", direction="minimize")
    await strategist.publish(event(started, "strategist"))
    await strategist.close()
    supervisor = await bus_as("supervisor", single.port)
    try:
        await SnapshotStore(supervisor).save(await fold_stream(supervisor), 1)
    finally:
        await supervisor.close()
    for user in ("strategist", "worker"):
        bus = await bus_as(user, single.port)
        try:
            projection = LiveProjection(bus, snapshots=SnapshotStore(bus))
            await projection.start()
            await projection.settle()
            await projection.stop()
            assert projection.started_from == 1 and set(projection.lab.campaigns) == {"c1"}, user
        finally:
            await bus.close()
        async with connect(user, single.port) as conn:
            await conn.nc.publish(f"$O.{SNAPSHOT_BUCKET}.M.forged", b"{}")
            assert await conn.denied(f"$O.{SNAPSHOT_BUCKET}.M.forged"), user
    assert single.violations() == [f"$O.{SNAPSHOT_BUCKET}.M.forged"] * 2


@pytest.mark.parametrize("user", sorted(HEARTBEAT))
async def test_heartbeats_only_for_oneself(single: Server, user: str) -> None:
    """shared/heartbeat.py: beat, list the live instances, delete the key on exit; no beat for another."""
    bus = await bus_as(user, single.port)
    try:
        async with Heartbeat(bus) as heartbeat:
            await heartbeat.beat()  # the first beat of its own is in flight: this one is stored on return
            beats = await alive(bus)
            assert [(b.service, b.instance) for b in beats] == [(user, "pytest")]
        other = "worker" if user != "worker" else "strategist"
        async with connect(user, single.port) as conn:
            await conn.nc.publish(f"$KV.{HEARTBEAT_BUCKET}.{other}.forged", b"{}")
            assert await conn.denied(f"$KV.{HEARTBEAT_BUCKET}.{other}.forged")
    finally:
        await bus.close()
    assert single.violations() == [f"$KV.{HEARTBEAT_BUCKET}.{other}.forged"]


# ---- the real services, each under its own user -----------------------------------------------------


async def _beating(js: JetStreamContext, service: str) -> bool:
    """Whether an instance of `service` has a heartbeat key, listed as shared.heartbeat.alive lists
    them (the cli user may not open a consumer on the heartbeat stream)."""
    keys = f"$KV.{HEARTBEAT_BUCKET}.{service}.>"
    return bool((await js.stream_info(f"KV_{HEARTBEAT_BUCKET}", subjects_filter=keys)).state.subjects)


async def _ready(js: JetStreamContext, name: str) -> bool:
    """Whether service `name` has done what it does at start: stream, durable, live projection, heartbeat."""
    try:
        stream = await js.stream_info(STREAM)
        if name in ("ledger", "worker", "explorer"):
            await js.consumer_info(STREAM, DURABLES[name])
        if name in ORDERED and stream.state.consumer_count < (2 if name == "worker" else 1):
            return False
        if name in HEARTBEAT:
            return await _beating(js, name)
    except nats.errors.Error:  # not found yet (stream, consumer, bucket or key)
        return False
    return True


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["ledger", "strategist", "worker", "explorer", "supervisor"])
async def test_service_runs_under_its_own_user(single: Server, tmp_path: Path, name: str) -> None:
    """`python -m services.<name>` with ALPHALAB_NATS_URL naming its own user starts (stream, durable,
    live projection, heartbeat), runs a few ticks and stops on SIGTERM, all without a permission error."""
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / f"{name}.log"
    started = time.monotonic()
    process = start_service(name, url(name, single.port), home, log)
    try:
        async with connect("cli", single.port) as cli:
            js = cli.nc.jetstream(timeout=2)
            while not await _ready(js, name):
                if process.poll() is not None:
                    text = log.read_text(errors="replace")
                    if "ModuleNotFoundError" in text or "ImportError" in text:
                        last = text.strip().splitlines()[-1]
                        pytest.skip(f"services.{name} does not import in this checkout: {last}")
                    raise AssertionError(f"services.{name} exited with {process.returncode}:\n{text[-3000:]}")
                assert time.monotonic() - started < 60, (
                    f"services.{name} not ready in 60 s:\n{log.read_text()[-3000:]}"
                )
                await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # a few ticks of the strategist's and supervisor's loops (alive(), folds)
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert single.violations() == []
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert single.violations() == []  # its shutdown too (heartbeat delete, flush)


# ---- (d) the read-only user ---------------------------------------------------------------------------


async def test_cli_cannot_publish_any_event_or_change_anything(single: Server) -> None:
    ledger = await bus_as("ledger", single.port)
    stored = await ledger.publish(event(rejected("ledger"), "ledger"))
    digest = await ledger.blobs.put(b"a blob")
    await ledger.close()
    worker = await bus_as("worker", single.port)

    async with connect("cli", single.port) as cli, Heartbeat(worker):
        js = cli.nc.jetstream(timeout=2)
        for event_type in sorted(payload_types()):
            await cli.nc.publish(f"alphalab.events.c1.{event_type}", b"{}")
        await cli.nc.publish(f"$O.{BLOB_BUCKET}.M.x", b"{}")
        await cli.nc.publish(f"$KV.{HEARTBEAT_BUCKET}.worker.x", b"{}")
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish("alphalab.events.c1.event-rejected", b"{}", timeout=OP_TIMEOUT)
        for event_type in payload_types():
            assert await cli.denied(f"alphalab.events.c1.{event_type}"), event_type
        assert await cli.denied(f"$O.{BLOB_BUCKET}.M.x")
        assert await cli.denied(f"$KV.{HEARTBEAT_BUCKET}.worker.x")
        with pytest.raises(nats.errors.TimeoutError):  # nor may it update the stream
            await cli.nc.jetstream(timeout=OP_TIMEOUT).update_stream(
                api.StreamConfig(name=STREAM, subjects=["alphalab.events.>"], max_age=1.0)
            )

        # ... but it reads: stream and consumer info, one event, its own durable, a blob, the heartbeats.
        assert (await js.stream_info(STREAM)).state.messages == 1
        assert (await js.get_msg(STREAM, seq=stored.seq)).subject == "alphalab.events.c1.event-rejected"
        sub = await js.pull_subscribe("alphalab.events.>", durable="cli", stream=STREAM)
        msgs = await sub.fetch(1, timeout=2)
        await msgs[0].ack_sync(timeout=2)
        store = await js.object_store(BLOB_BUCKET)
        assert (await store.get(digest.replace(":", "-"))).data == b"a blob"
        reader = Bus(cli.nc, Producer(service="cli", instance="pytest"))  # no ensure_stream
        assert [b.service for b in await alive(reader)] == ["worker"]
        assert await reader.consumer_caught_up("cli")
    await worker.close()
    async with connect("ledger", single.port) as ledger_conn:
        assert (await ledger_conn.nc.jetstream().stream_info(STREAM)).state.messages == 1


def run_started(i: int) -> Event:
    return event(RunStarted(run_id=f"r{i}", proposal_id=f"p{i}", worker="w1"), "worker")


async def reader_as(user: str, port: int) -> Bus:
    """A connection for a reader: Bus.connect without ensure_stream (a test must not hang on it)."""
    producer = Producer(service=user, instance="pytest")
    return await asyncio.wait_for(Bus.connect(url(user, port), producer, ensure_stream=False), 10)


async def publish_as(user: str, port: int, events: list[Event]) -> None:
    bus = await bus_as(user, port)
    try:
        await bus.publish_many(events)
    finally:
        await bus.close()


async def test_cli_follows_the_stream_with_direct_gets(single: Server) -> None:
    """shared/reader.py as the read-only user: it waits for the stream to exist, then folds every event a
    writer publishes, in order and once: those stored before it looked, those after it caught up, and
    those after a NATS restart; a malformed message is passed over. A late reader catches up in batches."""
    events = [run_started(i) for i in range(3000)]
    cli = await reader_as("cli", single.port)
    folded: list[Event] = []
    reader = StreamReader(cli, on_event=folded.append)
    stop = asyncio.Event()
    following = asyncio.create_task(reader.follow(stop))
    try:
        await asyncio.sleep(0.2)  # no stream yet: the worker's Bus.connect creates it
        worker = await bus_as("worker", single.port)
        await worker.publish_many(events[:1500])
        await worker.js.publish("alphalab.events.c1.run-started", b"not an event")
        await worker.publish_many(events[1500:2000])
        await wait_for(lambda: reader.stream_seq == 2001, 20, "the events stored so far")
        await worker.publish_many(events[2000:2500])  # after it caught up: woken by core NATS
        await wait_for(lambda: reader.stream_seq == 2501, 20, "the events published after it caught up")
        await worker.close()
        assert single.violations() == []

        single.restart()  # same port and store: the reader goes on from its sequence
        await publish_as("worker", single.port, events[2500:])
        await wait_for(lambda: reader.stream_seq == 3001, 30, "the events published after the restart")
        assert [e.event_id for e in folded] == [e.event_id for e in events]

        late: list[Event] = []
        await StreamReader(cli, on_event=late.append).catch_up()
        assert [e.event_id for e in late] == [e.event_id for e in events]
        await (await bus_as("cli", single.port)).close()  # ensure_stream on an existing stream only reads
    finally:
        stop.set()
        await asyncio.wait_for(following, 10)
        await cli.close()
    assert [e.event_id for e in folded] == [e.event_id for e in events]  # nothing more after the stop
    assert single.violations() == []


async def test_cli_reads_a_stream_without_direct_gets_one_message_at_a_time(single: Server) -> None:
    """A stream created without direct gets (before Bus.ensure_stream allowed them, or by an operator)
    is read through STREAM.MSG.GET, which the read-only user may also use."""
    async with connect("ledger", single.port) as ledger:
        await ledger.nc.jetstream().add_stream(
            api.StreamConfig(name=STREAM, subjects=["alphalab.events.>"], storage=api.StorageType.FILE)
        )
    events = [run_started(i) for i in range(1200)]
    await publish_as("worker", single.port, events)
    cli = await reader_as("cli", single.port)
    folded: list[Event] = []
    reader = StreamReader(cli, on_event=folded.append)
    try:
        await reader.catch_up()
    finally:
        await cli.close()
    assert [e.event_id for e in folded] == [e.event_id for e in events] and reader.stream_seq == 1200
    assert single.violations() == []


async def test_each_service_publishes_exactly_its_event_types(single: Server) -> None:
    """The whole matrix: every user publishes every catalogue type (campaign token = the user's name);
    the stream stores exactly the allowed ones and the server reports a violation for each of the rest."""
    types = set(payload_types())
    await (await bus_as("ledger", single.port)).close()  # creates the stream
    async with connect("ledger", single.port) as reader:
        js = reader.nc.jetstream(timeout=2)
        for user, allowed in EMITS.items():
            async with connect(user, single.port) as conn:
                for event_type in sorted(types):
                    await conn.nc.publish(f"alphalab.events.{user}.{event_type}", b"{}")
                await conn.nc.flush(timeout=2)
                deadline = time.monotonic() + 5
                while True:  # until every publish is accounted for: stored, or refused
                    info = await js.stream_info(STREAM, subjects_filter=f"alphalab.events.{user}.>")
                    stored = {subject.rsplit(".", 1)[1] for subject in (info.state.subjects or {})}
                    denied = {
                        t for t in types if any(f'alphalab.events.{user}.{t}"' in e for e in conn.errors)
                    }
                    if len(stored) + len(denied) >= len(types) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
            assert stored == allowed, user
            assert denied == types - allowed, user


async def test_wrong_password_is_refused(single: Server) -> None:
    with pytest.raises(nats.errors.Error):
        await nats.connect(
            f"nats://worker:wrong@127.0.0.1:{single.port}",
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


# ---- the three-node cluster ----------------------------------------------------------------------------


@contextmanager
def cluster(tmp_path: Path) -> Iterator[list[Server]]:
    """The three shipped node configs, copied with their nine ports remapped and temp stores."""
    copy = tmp_path / "nats"
    shutil.copytree(NATS_DIR, copy)
    documented = [4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224]
    mapped = {port: free_port() for port in documented}
    servers = []
    try:
        for i, conf in enumerate(sorted((copy / "cluster").glob("n*.conf"))):
            text = re.sub(
                r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{mapped[int(m.group(1))]}", conf.read_text()
            )
            text, n = re.subn(r'store_dir: "[^"]*"', f'store_dir: "{tmp_path / conf.stem}"', text)
            assert n == 1
            conf.write_text(text)
            servers.append(
                launch(["-c", str(conf)], tmp_path / f"{conf.stem}.log", mapped[4222 + i], mapped[8222 + i])
            )
        deadline = time.monotonic() + START_TIMEOUT
        for server in servers:
            server.wait_ready(deadline)
        wait_for_meta_leader(servers, deadline)
        yield servers
    finally:
        for server in servers:
            server.stop()


def wait_for_meta_leader(servers: list[Server], deadline: float) -> None:
    """Until every node reports a JetStream meta leader and a meta group of three."""
    status: list[object] = []
    while time.monotonic() < deadline:
        status = []
        for server in servers:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor}/jsz", timeout=1) as response:
                    meta = json.load(response).get("meta_cluster", {})
            except OSError as err:
                meta = {"error": repr(err)}
            status.append(meta)
        if all(m.get("leader") and m.get("cluster_size") == 3 for m in status):  # type: ignore[union-attr]
            return
        time.sleep(0.1)
    raise AssertionError(f"no JetStream meta leader: {status}")


async def publish_within(
    js: JetStreamContext, subject: str, seconds: float, data: bytes = b"{}"
) -> api.PubAck | None:
    """Publish until one is acked (across a reconnect and a stream leader election), or give up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return await js.publish(subject, data, timeout=1)
        except nats.errors.Error:  # timeout, no responders, connection closed or reconnecting
            await asyncio.sleep(0.2)
    return None


R3 = api.StreamConfig(
    name=STREAM, subjects=["alphalab.events.>"], storage=api.StorageType.FILE, num_replicas=3
)


async def add_r3_stream(port: int) -> api.StreamInfo:
    """Create the event stream with three replicas, as the ledger user. Retried: right after the meta
    leader is elected, the first placement can take longer than one API timeout on a small machine."""
    async with connect("ledger", port) as admin:
        js = admin.nc.jetstream(timeout=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                return await js.add_stream(R3)
            except nats.errors.TimeoutError:
                if time.monotonic() > deadline:
                    raise


@pytest.mark.timeout(90)
async def test_cluster_replicates_a_stream_and_survives_a_node(tmp_path: Path) -> None:
    started = time.monotonic()
    with cluster(tmp_path) as nodes:
        formed = time.monotonic() - started
        n1, n2, n3 = nodes
        # Every node, each URL with the credentials: nats-py sends the credentials of the URL it
        # connects to, so nodes it only learns from the server (no credentials) would refuse it.
        nc = await nats.connect(
            [url("ledger", n.port) for n in nodes],
            connect_timeout=2,
            dont_randomize=True,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
        )
        try:
            js = nc.jetstream(timeout=5)
            info = await add_r3_stream(n1.port)
            assert info.config.num_replicas == 3
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2
            ack = await js.publish("alphalab.events.c1.event-rejected", b"first")
            async with connect("cli", n3.port) as reader:  # read back on another node
                got = await reader.nc.jetstream().get_msg(STREAM, seq=ack.seq)
                assert got.data == b"first"

            n1.stop()  # the node the client is connected to
            second = await publish_within(js, "alphalab.events.c1.event-rejected", 30.0, b"second")
            assert second is not None, "no publish acked within 30 s of the node's loss"
            assert nc.connected_url is not None and nc.connected_url.port in (n2.port, n3.port)
            async with connect("cli", n2.port) as reader:
                got = await reader.nc.jetstream().get_msg(STREAM, seq=second.seq)
                assert got.data == b"second"
        finally:
            await nc.close()
    took = time.monotonic() - started
    print(f"\ncluster formed (meta leader on all 3) in {formed:.2f}s; test took {took:.2f}s")


@pytest.mark.timeout(60)
async def test_bus_connect_keeps_a_replicated_stream_replicated(tmp_path: Path) -> None:
    with cluster(tmp_path) as nodes:
        await add_r3_stream(nodes[0].port)
        bus = await bus_as("worker", nodes[1].port)
        try:
            info = await bus.js.stream_info(STREAM)
        finally:
            await bus.close()
        assert info.config.num_replicas == 3


@pytest.mark.timeout(60)
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Bus.connect takes one URL (ALPHALAB_NATS_URL); nats-py sends credentials only to URLs that "
    "carry them, so after that node fails, the nodes it learned from the server refuse it "
    "(authentication error)",
)
async def test_one_url_client_fails_over_to_the_other_nodes(tmp_path: Path) -> None:
    with cluster(tmp_path) as nodes:
        await add_r3_stream(nodes[0].port)
        bus = await bus_as("worker", nodes[0].port)
        try:
            nodes[0].stop()
            acked = await publish_within(bus.nc.jetstream(), "alphalab.events.c1.run-started", 4.0)
            refused = any("authentication error" in n.log.read_text(errors="replace") for n in nodes[1:])
            if acked is None and not refused:
                raise RuntimeError("no failover, but not for the documented reason (no authentication error)")
            assert acked is not None, "no publish acked within 4 s of the node's loss (authentication errors)"
        finally:
            with contextlib.suppress(Exception):  # closing while it reconnects may raise ConnectionResetError
                await asyncio.wait_for(bus.nc.close(), 5)


# ---- the container files (no Docker engine here: their structure, and that the copied files install) ----

COMPOSE = ROOT / "infra" / "compose.yaml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
SERVICES = ("ledger", "strategist", "worker", "explorer", "supervisor")


def test_compose_runs_each_service_as_its_own_user() -> None:
    yaml = pytest.importorskip("yaml")
    from shared.settings import ENV_PREFIX, Settings

    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"nats", *SERVICES, "worker-gpu"}
    nats_service = services["nats"]
    assert nats_service["image"] == "nats:2"
    assert nats_service["command"][:2] == ["-c", "/etc/nats/single.conf"]
    assert "./nats:/etc/nats:ro" in nats_service["volumes"]
    assert set(nats_service["environment"]) == {f"NATS_{user.upper()}_PASSWORD" for user in USERS}
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in (*SERVICES, "worker-gpu"):
        service, user = services[name], name.removesuffix("-gpu")
        assert service["command"] == [f"services.{user}"]
        assert service["build"] == {"context": "..", "dockerfile": "infra/docker/Dockerfile"}
        env = service["environment"]
        given = {key for key in env if key.startswith(ENV_PREFIX)}
        assert given <= settings, given - settings  # the services refuse unknown ALPHALAB_* variables
        found = re.fullmatch(r"nats://(\w+):\$\{(\w+):\?[^}]*\}@nats:4222", env["ALPHALAB_NATS_URL"])
        assert found and found.groups() == (user, f"NATS_{user.upper()}_PASSWORD"), env["ALPHALAB_NATS_URL"]
    assert services["ledger"]["environment"]["ALPHALAB_HOME"] == "/data"
    assert any(v.split("#")[0].strip().startswith("ledger-home:/data") for v in services["ledger"]["volumes"])


def test_dockerfile_copies_what_installs(tmp_path: Path) -> None:
    """FROM/ENTRYPOINT/CMD as documented; every COPY source exists and is let through the ignore file;
    and those files alone build the package (pip, no Docker)."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["python", "-m"\]$', text, re.M)
    assert re.search(r'^CMD \["services\.ledger"\]$', text, re.M)
    sources = [src for line in re.findall(r"^COPY (.+) \S+$", text, re.M) for src in line.split()]
    allowed = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    for src in sources:
        assert (ROOT / src).exists(), src
        assert f"!{src}" in allowed or f"!{src}/" in allowed, src
    for package in ("alphalab", "shared", "services"):
        assert package in sources, package

    context = tmp_path / "context"
    context.mkdir()
    for src in sources:
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, context / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / src, context / src)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=context,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-3000:]
    assert list(tmp_path.glob("alphalab-*.whl"))
