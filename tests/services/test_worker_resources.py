"""Worker resources without a GPU: discovery (a stand-in nvidia-smi), packing, the manifest's
[resources], proposals that carry them, the sandbox's GPU grant, and heartbeats that advertise them.

The real GPU path (nvidia-smi itself, CUDA honouring CUDA_VISIBLE_DEVICES inside bubblewrap) runs only
on a machine with a GPU: `test_a_granted_gpu_is_usable_inside_the_sandbox` skips without one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.worker import resources
from services.worker.resources import Gpu, Host, Pool, discover, parse_gpus, query_gpus, select
from shared.bus import Bus
from shared.domain import load_domain
from shared.errors import ConfigError
from shared.events import ProposalCreated, RunResources, decode, encode
from shared.heartbeat import Beat, Heartbeat, alive
from shared.projections import snapshot
from shared.replay import fold
from shared.sandbox import Access, Limits, clean_env, devices, run
from shared.settings import Settings
from tests.factories import event, small_campaign
from tests.services.fake_gpu import TWO_GPUS, fake_smi, standin_adapter

A4000, A100 = parse_gpus("\n".join(TWO_GPUS))


# ---- discovery ----------------------------------------------------------------------------------------


def test_nvidia_smi_output_is_parsed_into_gpus() -> None:
    """Index, uuid, name, total and used memory per line; a name with a comma is kept whole, memory
    the driver does not report counts as none, and a line that is not a GPU is skipped."""
    text = "\n".join(
        [
            *TWO_GPUS,
            "2, GPU-abc, NVIDIA GH200 480GB, Grace Hopper, [N/A], [N/A]",
            "Failed to initialize NVML: Driver/library version mismatch",
            "",
        ]
    )
    gpus = parse_gpus(text)
    assert [g.index for g in gpus] == [0, 1, 2]
    assert gpus[0] == Gpu(0, "GPU-00000000-1111-2222-3333-444444444444", "NVIDIA Stand-in A4000", 16000, 1000)
    assert gpus[0].capacity_mb == 15000 and gpus[1].capacity_mb == 40000
    assert gpus[2].name == "NVIDIA GH200 480GB, Grace Hopper" and gpus[2].capacity_mb == 0


def test_gpus_are_queried_from_nvidia_smi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The binary found on PATH is asked for exactly the worker's query (the stand-in refuses any other)."""
    monkeypatch.setenv("PATH", f"{fake_smi(tmp_path / 'bin')}:{os.environ['PATH']}")
    assert query_gpus() == (A4000, A100)
    assert discover().gpus == (A4000, A100)


def test_no_nvidia_smi_or_a_failing_one_means_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without the binary, or where it fails (no driver), is a CPU host, not an error."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert query_gpus() == ()
    failing = fake_smi(tmp_path / "failing", ("NVIDIA-SMI has failed",), exit_code=9)
    assert query_gpus(str(failing / "nvidia-smi")) == ()
    assert query_gpus(str(tmp_path / "missing" / "nvidia-smi")) == ()


def test_the_setting_restricts_the_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ALPHALAB_GPUS: auto takes every GPU listed, none makes a CPU worker, indices pick; an index that
    nvidia-smi does not list is refused naming the setting."""
    listed = (A4000, A100)
    assert select(listed, "auto") == listed
    assert select(listed, "none") == ()
    assert select(listed, "1") == (A100,)
    with pytest.raises(ConfigError, match=r"ALPHALAB_GPUS=0,3: no GPU 3 here \(nvidia-smi lists: 0, 1\)"):
        select(listed, "0,3")
    monkeypatch.setenv("PATH", f"{fake_smi(tmp_path / 'bin')}:{os.environ['PATH']}")
    assert discover("none").gpus == ()
    assert Settings.load(environ={"ALPHALAB_GPUS": "0,1"}).gpus == "0,1"
    with pytest.raises(ConfigError, match="ALPHALAB_GPUS"):
        Settings.load(environ={"ALPHALAB_GPUS": "first"})


def test_cpus_and_memory_are_found_without_torch() -> None:
    """CPUs from this process's affinity, memory from the machine (each bounded by a cgroup's limit)."""
    assert 1 <= resources.cpus() <= len(os.sched_getaffinity(0))
    assert resources.memory_mb() > 256
    probe = "import sys, services.worker.resources; print('torch' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


# ---- packing ------------------------------------------------------------------------------------------


def _need(gpus: int = 1, memory: int | None = None) -> RunResources:
    return RunResources(gpus=gpus, gpu_memory_mb=memory)


def test_runs_are_packed_onto_devices_by_free_memory() -> None:
    """Each run goes to the device with the most memory left that holds it; runs are taken while their
    memory fits, and a released run's memory is there for the next."""
    pool = Pool([A4000, A100])  # 15,000 and 40,000 MiB free
    first = pool.place(_need(memory=30000))
    assert first is not None and first.devices == (1,)
    second = pool.place(_need(memory=12000))
    assert second is not None and second.devices == (0,)  # 15,000 left there, 10,000 on GPU 1
    third = pool.place(_need(memory=9000))
    assert third is not None and third.devices == (1,)
    assert pool.free() == {0: 3000, 1: 1000}
    assert pool.place(_need(memory=4000)) is None  # fits once something ends, not now
    assert pool.fits(_need(memory=4000))
    pool.release(first)
    fourth = pool.place(_need(memory=4000))
    assert fourth is not None and fourth.devices == (1,)
    assert pool.free() == {0: 3000, 1: 27000} and pool.runs() == {0: 1, 1: 2}


def test_a_run_without_memory_gets_whole_devices_to_itself() -> None:
    """No gpu_memory_mb: each of its devices must be idle, and takes no other run until released."""
    pool = Pool([A4000, A100])
    small = pool.place(_need(memory=1000))
    assert small is not None and small.devices == (1,)
    whole = pool.place(_need())
    assert whole is not None and whole.devices == (0,) and whole.whole
    assert pool.place(_need()) is None and pool.place(_need(memory=100)) is not None  # GPU 1 still has room
    assert pool.place(_need(gpus=2, memory=100)) is None  # GPU 0 is held whole
    pool.release(whole)
    pair = pool.place(_need(gpus=2, memory=100))
    assert pair is not None and set(pair.devices) == {0, 1}


def test_what_no_device_could_hold_never_fits() -> None:
    """More GPUs than the worker has, or more memory than one of them has free, never fits here."""
    pool = Pool([A4000, A100])
    assert not pool.fits(_need(gpus=3, memory=10))
    assert not pool.fits(_need(memory=40001))
    assert pool.fits(_need(gpus=2, memory=15000)) and not pool.fits(_need(gpus=2, memory=15001))
    assert not Pool([]).fits(_need()) and not Pool([]).has_room()
    with pytest.raises(ValueError):
        pool.place(RunResources())


def test_the_heartbeat_description_counts_what_runs_hold() -> None:
    pool = Pool([A4000, A100])
    pool.place(_need(memory=5000))
    described = Host(cpus=8, memory_mb=64000, gpus=(A4000, A100)).describe(pool)
    assert described["cpus"] == 8 and described["memory_mb"] == 64000
    rows = [(g["index"], g["memory_total_mb"], g["memory_free_mb"], g["runs"]) for g in described["gpus"]]
    assert rows == [(0, 16000, 15000, 0), (1, 40000, 35000, 1)]
    json.dumps(described)


# ---- the manifest and the proposal --------------------------------------------------------------------


def test_a_manifest_declares_what_a_run_needs(tmp_path: Path) -> None:
    """No [resources] is a CPU run; `gpus` and `gpu_memory_mb` say what a GPU run needs."""
    assert load_domain(str(standin_adapter(tmp_path / "cpu"))).manifest.resources.gpus == 0
    gpu = load_domain(str(standin_adapter(tmp_path / "gpu", "gpus = 1\ngpu_memory_mb = 8000")))
    assert (gpu.manifest.resources.gpus, gpu.manifest.resources.gpu_memory_mb) == (1, 8000)


BROKEN = {
    "negative gpus": ("gpus = -1", "resources.gpus: Input should be greater than or equal to 0"),
    "gpus as text": ('gpus = "1"', "resources.gpus: Input should be a valid integer"),
    "fractional memory": ("gpus = 1\ngpu_memory_mb = 0.5", "resources.gpu_memory_mb: Input should be a"),
    "memory without a gpu": ("gpu_memory_mb = 8000", "resources: gpu_memory_mb is the memory of each GPU"),
    "zero memory": ("gpus = 1\ngpu_memory_mb = 0", "resources.gpu_memory_mb: Input should be greater than"),
    "misspelt field": ("gpu = 1", "resources.gpu: unknown field"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_resources_table_is_refused_naming_file_and_field(tmp_path: Path, case: str) -> None:
    table, expected = BROKEN[case]
    adapter = standin_adapter(tmp_path / "adapter", table)
    with pytest.raises(ConfigError) as refused:
        load_domain(str(adapter))
    assert str(adapter / "domain.toml") in str(refused.value)
    assert expected in str(refused.value)


def test_a_proposal_may_say_what_its_run_needs() -> None:
    """The field round-trips; a proposal without it (every one before it existed) leaves it to the domain."""
    needs = ProposalCreated(proposal_id="p1", config={}, resources=RunResources(gpus=1, gpu_memory_mb=8000))
    assert decode(encode(event(needs))).payload == needs
    old = json.loads(encode(event(ProposalCreated(proposal_id="p1", config={"lr": 1}))))
    del old["payload"]["resources"]
    decoded = decode(json.dumps(old).encode())
    assert decoded.recognized and isinstance(decoded.payload, ProposalCreated)
    assert decoded.payload.resources is None
    with pytest.raises(ValueError, match="needs gpus >= 1"):
        RunResources(gpu_memory_mb=100)


def test_old_events_without_the_field_fold_as_before() -> None:
    """A log written before proposals carried resources decodes and folds to the same projections."""
    events = small_campaign(runs=3)
    stripped = []
    for original in events:
        doc = json.loads(encode(original))
        doc["payload"].pop("resources", None)
        stripped.append(decode(json.dumps(doc).encode()))
    assert snapshot(fold(stripped).campaigns["c1"]) == snapshot(fold(events).campaigns["c1"])


# ---- the sandbox's grant ------------------------------------------------------------------------------


def test_a_grant_sets_the_runs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Granted devices: CUDA_VISIBLE_DEVICES names them in nvidia-smi's order; granted none (a CPU
    run): it is empty, so CUDA sees no device; no grant anywhere: nothing is set, as before."""
    monkeypatch.delenv(devices.VISIBLE, raising=False)
    monkeypatch.delenv(devices.ORDER, raising=False)
    assert devices.VISIBLE not in clean_env()
    with devices.granted([1, 0]):
        env = clean_env()
        assert (env[devices.VISIBLE], env[devices.ORDER]) == ("1,0", "PCI_BUS_ID")
        with devices.granted(()):
            assert clean_env()[devices.VISIBLE] == "" and devices.ORDER not in clean_env()
    # A process started for a run (a harness) passes its own grant on to what it sandboxes.
    monkeypatch.setenv(devices.VISIBLE, "2")
    monkeypatch.setenv(devices.ORDER, "FASTEST_FIRST")
    assert devices.grant() == ("2",) and devices.environment() == {
        devices.VISIBLE: "2",
        devices.ORDER: "FASTEST_FIRST",
    }
    monkeypatch.setenv(devices.VISIBLE, "")
    assert devices.grant() == () and devices.environment() == {devices.VISIBLE: ""}


def test_a_cpu_run_gets_no_gpu_device_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The /dev/nvidia* nodes (here a stand-in /dev) go into the sandbox unless the grant is empty."""
    monkeypatch.delenv(devices.VISIBLE, raising=False)
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (dev / name).touch()
    every = [str(dev / n) for n in ("nvidia-uvm", "nvidia0", "nvidia1", "nvidiactl")]
    assert devices.nodes(dev) == every
    with devices.granted([1]):
        assert devices.nodes(dev) == every  # pinned by CUDA_VISIBLE_DEVICES, not by nodes
    with devices.granted([]):
        assert devices.nodes(dev) == []


def test_a_sandboxed_process_sees_its_grant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real sandboxed child (the strongest isolation here) gets the grant of the task that starts it."""
    monkeypatch.delenv(devices.VISIBLE, raising=False)
    code = "import json, os; print(json.dumps([os.environ.get('CUDA_VISIBLE_DEVICES'), os.listdir('/dev')]))"
    argv, limits = [sys.executable, "-c", code], Limits(wall_seconds=60)
    seen = {}
    for grant in ((), (1,)):
        with devices.granted(grant):
            outcome = run(argv, cwd=tmp_path, limits=limits, access=Access(tmp_path))
        assert outcome.returncode == 0, outcome.stderr_tail
        seen[grant] = json.loads(outcome.stdout_tail)
    assert seen[()][0] == "" and not any(name.startswith("nvidia") for name in seen[()][1])
    assert seen[(1,)][0] == "1"


NO_GPU = shutil.which("nvidia-smi") is None or not Path("/dev/nvidiactl").exists()


@pytest.mark.skipif(NO_GPU, reason="no GPU here (nvidia-smi and /dev/nvidiactl)")
def test_a_granted_gpu_is_usable_inside_the_sandbox(tmp_path: Path) -> None:
    """On a GPU machine: the real nvidia-smi is read, and a sandboxed run granted GPU 0 sees exactly one
    device, which CUDA can use (torch); one granted none sees no device."""
    pytest.importorskip("torch")
    gpus = query_gpus()
    assert gpus and gpus[0].memory_total_mb > 0
    code = (
        "import torch; print(torch.cuda.device_count(), "
        "torch.cuda.is_available() and float(torch.ones(4, device='cuda').sum()))"
    )
    argv, limits = [sys.executable, "-c", code], Limits(wall_seconds=120)
    with devices.granted([gpus[0].index]):
        pinned = run(argv, cwd=tmp_path, limits=limits, access=Access(tmp_path))
    with devices.granted([]):
        cpu = run(argv, cwd=tmp_path, limits=limits, access=Access(tmp_path))
    assert pinned.returncode == 0, pinned.stderr_tail
    assert pinned.stdout_tail.split() == ["1", "4.0"]
    assert cpu.stdout_tail.split()[0] == "0", cpu.stderr_tail


# ---- the heartbeat ------------------------------------------------------------------------------------


def test_an_old_beat_reads_with_the_new_fields_defaulted() -> None:
    old = {"service": "worker", "instance": "w1", "at": 1.0, "busy_with": "p001-1", "position": 3}
    beat = Beat.parse(json.dumps(old).encode())
    assert (beat.busy_with, beat.runs, beat.resources) == ("p001-1", (), None)


async def test_a_workers_heartbeat_advertises_its_resources_and_runs(bus: Bus) -> None:
    pool = Pool([A4000, A100])
    host = Host(cpus=4, memory_mb=32000, gpus=(A4000, A100))
    async with Heartbeat(bus, resources=lambda: host.describe(pool)) as heartbeat:
        pool.place(_need(memory=2000))
        heartbeat.runs += ["p001-1", "p002-1"]
        await heartbeat.beat()
        [beat] = await alive(bus)
    assert beat.busy_with == "p001-1" and beat.runs == ("p001-1", "p002-1")
    assert beat.resources is not None and beat.resources["cpus"] == 4
    assert [g["memory_free_mb"] for g in beat.resources["gpus"]] == [15000, 38000]
