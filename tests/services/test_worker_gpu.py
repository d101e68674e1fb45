"""GPU runs on a real bus: the admission that packs them, and real worker processes, one CPU-only and one
with (stand-in) GPUs, each taking only the runs of its kind, a GPU run pinned to its device.

The GPUs are a stand-in nvidia-smi on the GPU worker's PATH (tests/services/fake_gpu.py): its output
format is the real one's, but no device exists, so what is checked is the routing, the packing and the
run's environment (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER) as the candidate and the harness see it.
CUDA using the device inside the sandbox is checked on a GPU machine only (test_worker_resources.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from services.worker import admission
from services.worker.admission import Admission
from services.worker.resources import Gpu, Pool
from services.worker.service import DURABLE, GPU_DURABLE, SUBJECT
from shared.bus import STREAM, Bus
from shared.events import CampaignStarted, Event, ProposalCreated, RunResources, decode
from shared.heartbeat import alive
from shared.nats_server import EmbeddedNats
from tests.conftest import ROOT, service_env, stream_events, wait_for
from tests.factories import event
from tests.services.fake_gpu import fake_smi, seen, standin_adapter

PCI = "PCI_BUS_ID"


# ---- the admission, on a real durable -----------------------------------------------------------------


async def test_the_admission_places_holds_and_hands_back_gpu_runs(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One 10,000 MiB GPU: a CPU proposal goes through unplaced; a 6,000 MiB run is placed; the next one
    is held (no other loop gets in) until the first releases its memory; one that needs more than the
    GPU has is handed back for another worker, and after BOUNCES deliveries goes on unplaced."""
    monkeypatch.setattr(admission, "BOUNCES", 2)
    monkeypatch.setattr(admission, "BOUNCE_DELAY_S", 0.2)
    needs = {"p0": RunResources(), "p1": _gpu(6000), "p2": _gpu(6000), "p3": _gpu(50000)}
    for pid in needs:
        await bus.publish(event(ProposalCreated(proposal_id=pid, config={})))

    async def need(proposal: Event) -> RunResources | None:
        assert isinstance(proposal.payload, ProposalCreated)
        return needs[proposal.payload.proposal_id]

    subscription = await bus.subscription(GPU_DURABLE, subject=SUBJECT, ack_wait=30.0)
    pool = Pool([Gpu(0, "GPU-0", "stand-in", 10000, 0)])
    door = Admission(subscription, pool, need, asyncio.Event())

    [cpu] = await door.fetch(1, timeout=2)
    assert _pid(cpu) == "p0" and door.placed(cpu.metadata.sequence.stream) is None
    await cpu.ack()
    [first] = await door.fetch(1, timeout=2)
    placement = door.placed(first.metadata.sequence.stream)
    assert _pid(first) == "p1" and placement is not None and placement.devices == (0,)
    held = asyncio.create_task(door.fetch(1, timeout=2))
    await asyncio.sleep(1.0)
    assert not held.done()  # p2 waits for memory, in the door
    assert await door.fetch(1, timeout=0.3) == []  # nobody else gets in meanwhile
    door.release(placement)
    [second] = await asyncio.wait_for(held, 5)
    second_placement = door.placed(second.metadata.sequence.stream)
    assert _pid(second) == "p2" and second_placement is not None
    await first.ack()
    await second.ack()
    door.release(second_placement)

    assert await door.fetch(1, timeout=2) == []  # p3 fits no device here: handed back, delayed
    assert pool.free() == {0: 10000}
    again: list = []
    for _ in range(20):  # redelivered after its delay, now for the second time: on to the handler
        again = await door.fetch(1, timeout=1)
        if again:
            break
    [unplaced] = again
    assert _pid(unplaced) == "p3" and unplaced.metadata.num_delivered == 2
    assert door.placed(unplaced.metadata.sequence.stream) is None
    await unplaced.ack()


def _gpu(memory: int) -> RunResources:
    return RunResources(gpus=1, gpu_memory_mb=memory)


def _pid(msg: object) -> str:
    payload = decode(msg.data).payload  # type: ignore[attr-defined]
    assert isinstance(payload, ProposalCreated)
    return payload.proposal_id


# ---- real workers ---------------------------------------------------------------------------------------


class _Workers:
    """Worker processes started with their own settings and PATH, stopped (and checked) at the end."""

    def __init__(self, nats_url: str, home: Path, tmp_path: Path) -> None:
        self.nats_url, self.home, self.tmp_path = nats_url, home, tmp_path
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, instance: str, **settings: str) -> subprocess.Popen[bytes]:
        env = service_env(self.nats_url, self.home)
        env.update(settings, ALPHALAB_INSTANCE=instance)
        env["PATH"] = f"{fake_smi(self.tmp_path / 'bin')}:{env.get('PATH', os.defpath)}"
        with self.log(instance).open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.worker"], env=env, stdout=sink, stderr=sink, cwd=ROOT
            )
        self.started[instance] = process
        return process

    def log(self, instance: str) -> Path:
        return self.tmp_path / f"{instance}.log"

    async def until(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """`wait_for`, failing with the workers' logs."""
        try:
            await wait_for(predicate, timeout, what)
        except AssertionError as err:
            logs = "\n".join(f"--- {i}\n{self.log(i).read_text()[-3000:]}" for i in self.started)
            raise AssertionError(f"{err}\n{logs}") from None

    def stop(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for instance, process in self.started.items():
            assert process.wait(timeout=30) == 0, self.log(instance).read_text()[-3000:]


@pytest.fixture
def workers(nats_server: EmbeddedNats, home: Path, tmp_path: Path) -> Iterator[_Workers]:
    started = _Workers(nats_server.url, home, tmp_path)
    try:
        yield started
    finally:
        started.stop()


async def _analyzed(bus: Bus, campaign_id: str, proposal_id: str) -> bool:
    return any(
        e.payload.proposal_id == proposal_id for e in await stream_events(bus, campaign_id, "run-analyzed")
    )


async def _started_by(bus: Bus, campaign_id: str) -> dict[str, str]:
    return {
        e.payload.proposal_id: e.payload.worker for e in await stream_events(bus, campaign_id, "run-started")
    }


async def _drained(bus: Bus, durable: str) -> bool:
    try:
        info = await bus.js.consumer_info(STREAM, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


def _campaign(adapter: Path, campaign_id: str) -> Event:
    payload = CampaignStarted(domain=str(adapter), objective="o", metric="score", direction="maximize")
    return event(payload, campaign_id)


def _proposal(campaign_id: str, pid: str, resources: RunResources | None = None) -> Event:
    payload = ProposalCreated(proposal_id=pid, config={"tag": f"{campaign_id}-{pid}"}, resources=resources)
    return event(payload, campaign_id, 1)


@pytest.mark.timeout(240)
async def test_gpu_runs_go_only_to_a_gpu_worker_each_pinned_to_its_device(
    bus: Bus, workers: _Workers, tmp_path: Path
) -> None:
    """Campaign c1's domain is a CPU one: its p001 is a CPU run, its p002 asks for a GPU itself. Campaign
    c2's domain declares `gpus = 1, gpu_memory_mb = 30000`. The CPU-only worker (ALPHALAB_GPUS=none, even
    with nvidia-smi on its PATH) runs c1/p001 with no GPU, and passes over both GPU runs; they wait until
    a worker with GPUs joins, which runs them, c2/p001 on the only GPU with 30,000 MiB free (GPU 1)."""
    cpu_domain, gpu_domain = (
        standin_adapter(tmp_path / "cpu"),
        standin_adapter(tmp_path / "gpu", "gpus = 1\ngpu_memory_mb = 30000"),
    )
    await bus.publish_many(
        [
            _campaign(cpu_domain, "c1"),
            _proposal("c1", "p001"),
            _proposal("c1", "p002", _gpu(1000)),
            _campaign(gpu_domain, "c2"),
            _proposal("c2", "p001"),
        ]
    )
    workers.start("cpu-worker", ALPHALAB_GPUS="none")
    await workers.until(lambda: _analyzed(bus, "c1", "p001"), 90, "the CPU run")
    await workers.until(lambda: _drained(bus, DURABLE), 30, "the CPU worker's durable drained")
    assert await _started_by(bus, "c1") == {"p001": "cpu-worker"} and await _started_by(bus, "c2") == {}
    [cpu_beat] = await alive(bus, "worker")
    assert cpu_beat.resources is not None and cpu_beat.resources["gpus"] == []
    cpu_run = seen(cpu_domain)["c1-p001"]
    assert cpu_run["fit"]["CUDA_VISIBLE_DEVICES"] == "" and cpu_run["harness"]["CUDA_VISIBLE_DEVICES"] == ""

    workers.start("gpu-worker")
    for campaign_id, pid in (("c1", "p002"), ("c2", "p001")):
        await workers.until(lambda c=campaign_id, p=pid: _analyzed(bus, c, p), 90, f"{campaign_id}/{pid}")
    assert await _started_by(bus, "c1") == {"p001": "cpu-worker", "p002": "gpu-worker"}
    assert await _started_by(bus, "c2") == {"p001": "gpu-worker"}
    runs = seen(cpu_domain)
    big = runs["c2-p001"]
    assert big["fit"] == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": PCI} == big["harness"]
    small = runs["c1-p002"]
    assert small["fit"]["CUDA_VISIBLE_DEVICES"] in {"0", "1"} and small["fit"]["CUDA_DEVICE_ORDER"] == PCI
    assert small["fit"] == small["harness"]
    beats = {beat.instance: beat for beat in await alive(bus, "worker")}
    gpu_resources = beats["gpu-worker"].resources
    assert gpu_resources is not None
    assert [(g["index"], g["memory_total_mb"]) for g in gpu_resources["gpus"]] == [(0, 16000), (1, 40000)]
    assert "cpu-worker" in beats
