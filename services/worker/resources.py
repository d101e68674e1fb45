"""What a worker's host has to run experiments with, and how its GPU runs are packed onto the devices.

Discovery needs no torch: CPUs are the ones this process may run on (its affinity, bounded by a cgroup
quota), memory the machine's (bounded by a cgroup limit), GPUs what `nvidia-smi --query-gpu` lists
when the binary is on PATH (no binary, no driver, an error or a timeout: no GPU, logged). The
`ALPHALAB_GPUS` setting restricts a worker: `auto` (every GPU listed), `none` (a CPU-only worker), or
indices such as `0,1` (nvidia-smi's; one it does not list is refused).

`Pool` places GPU runs by memory: a run needing `gpus` devices with `gpu_memory_mb` each goes onto the
devices with the most memory left that hold that much (so runs spread over idle GPUs first), and one
without `gpu_memory_mb` gets each of its devices to itself. What is left is counted from what a device
had free when the worker started, less what its runs reserved; memory that others take later is not
seen, and nothing holds a run to what it declared (the sandbox bounds host memory, not GPU memory).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from shared.errors import ConfigError
from shared.events import RunResources

__all__ = ["QUERY", "Gpu", "Host", "Placement", "Pool", "discover", "parse_gpus", "query_gpus", "select"]

SMI = "nvidia-smi"
QUERY = "index,uuid,name,memory.total,memory.used"
SMI_TIMEOUT_S = 15.0
MIB = 1024 * 1024
_CGROUP = Path("/sys/fs/cgroup")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int  # nvidia-smi's (PCI bus order): CUDA_VISIBLE_DEVICES's under CUDA_DEVICE_ORDER=PCI_BUS_ID
    uuid: str
    name: str
    memory_total_mb: int  # MiB, as nvidia-smi counts
    memory_used_mb: int  # held by other processes when the worker started

    @property
    def capacity_mb(self) -> int:
        """What this worker's runs may use of it: what was free when it started."""
        return max(0, self.memory_total_mb - self.memory_used_mb)


@dataclass(frozen=True, slots=True)
class Host:
    cpus: int
    memory_mb: int
    gpus: tuple[Gpu, ...] = ()

    def describe(self, pool: Pool | None = None) -> dict[str, Any]:
        """For the heartbeat: CPUs, memory, and each GPU with the memory its runs have left."""
        free = pool.free() if pool is not None else {}
        runs = pool.runs() if pool is not None else {}
        return {
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "gpus": [
                {
                    "index": gpu.index,
                    "uuid": gpu.uuid,
                    "name": gpu.name,
                    "memory_total_mb": gpu.memory_total_mb,
                    "memory_free_mb": free.get(gpu.index, gpu.capacity_mb),
                    "runs": runs.get(gpu.index, 0),
                }
                for gpu in self.gpus
            ],
        }


def discover(setting: str = "auto") -> Host:
    """This host's CPUs, memory and (unless `setting` is `none`) the GPUs `setting` allows."""
    gpus = () if setting == "none" else select(query_gpus(), setting)
    return Host(cpus=cpus(), memory_mb=memory_mb(), gpus=gpus)


def select(gpus: Sequence[Gpu], setting: str) -> tuple[Gpu, ...]:
    """The GPUs an `ALPHALAB_GPUS` value allows; ConfigError for an index nvidia-smi did not list."""
    if setting == "none":
        return ()
    if setting == "auto":
        return tuple(gpus)
    wanted = [int(part) for part in setting.split(",")]
    listed = {gpu.index: gpu for gpu in gpus}
    missing = [index for index in wanted if index not in listed]
    if missing:
        have = ", ".join(str(index) for index in sorted(listed)) or "none"
        raise ConfigError(
            f"ALPHALAB_GPUS={setting}: no GPU {missing[0]} here (nvidia-smi lists: {have}); "
            "name listed indices, or auto, or none"
        )
    return tuple(listed[index] for index in dict.fromkeys(wanted))


def query_gpus(smi: str | None = None) -> tuple[Gpu, ...]:
    """The GPUs nvidia-smi lists; none where it is missing or fails (said in the log)."""
    binary = smi or shutil.which(SMI)
    if binary is None:
        return ()
    try:
        done = subprocess.run(
            [binary, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=SMI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("gpu_query_failed", binary=binary, error=repr(err))
        return ()
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip()[-500:]
        log.warning("gpu_query_failed", binary=binary, returncode=done.returncode, error=why)
        return ()
    return parse_gpus(done.stdout)


def parse_gpus(text: str) -> tuple[Gpu, ...]:
    """nvidia-smi's `index, uuid, name, memory.total, memory.used` lines (csv, noheader, nounits).

    A line that does not parse is skipped (and logged); memory it reports as `[N/A]` or
    `[Not Supported]` counts as 0, so such a device takes only runs that want it whole."""
    found: list[Gpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 5:
            log.warning("gpu_line_skipped", line=line[:200])
            continue
        index, uuid, total, used = fields[0], fields[1], fields[-2], fields[-1]
        name = ", ".join(fields[2:-2])  # a name with commas in it
        if not index.isdigit():
            log.warning("gpu_line_skipped", line=line[:200])
            continue
        found.append(Gpu(int(index), uuid, name, _mib(total), _mib(used)))
    return tuple(found)


def _mib(value: str) -> int:
    try:
        number = float(value)
    except ValueError:  # [N/A], [Not Supported]
        return 0
    return max(0, int(number)) if math.isfinite(number) else 0


def cpus() -> int:
    """The CPUs this process may run on, bounded by its cgroup's quota (cpu.max) where there is one."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = (_CGROUP / "cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return max(1, count)


def memory_mb() -> int:
    """The machine's memory in MiB, bounded by this process's cgroup limit (memory.max) if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        total = 0
    with contextlib.suppress(OSError, ValueError):
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            total = min(total, int(limit)) if total else int(limit)
    return total // MIB


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a run was placed: (device index, MiB reserved on it) per device, and whether whole."""

    shares: tuple[tuple[int, int], ...]
    whole: bool = False

    @property
    def devices(self) -> tuple[int, ...]:
        return tuple(index for index, _ in self.shares)


class Pool:
    """The GPUs of a worker and what its running GPU runs hold of them (see the module's docstring)."""

    def __init__(self, gpus: Sequence[Gpu]) -> None:
        self.gpus = tuple(gpus)
        self._reserved = {gpu.index: 0 for gpu in self.gpus}
        self._runs = {gpu.index: 0 for gpu in self.gpus}
        self._whole: set[int] = set()

    def free(self) -> dict[int, int]:
        """MiB each device has left for more runs."""
        return {gpu.index: gpu.capacity_mb - self._reserved[gpu.index] for gpu in self.gpus}

    def runs(self) -> dict[int, int]:
        return dict(self._runs)

    def has_room(self) -> bool:
        """Whether some run could be placed now (a device with memory left, or an idle one)."""
        free = self.free()
        return any(self._runs[i] == 0 or (free[i] > 0 and i not in self._whole) for i in self._reserved)

    def fits(self, need: RunResources) -> bool:
        """Whether `need` could ever be placed here (on these devices, all idle)."""
        return Pool(self.gpus).place(need) is not None

    def place(self, need: RunResources) -> Placement | None:
        """Reserve devices for a run that needs `need` (at least one GPU), or None if it does not fit now."""
        if need.gpus < 1:
            raise ValueError("a CPU run is not placed on GPUs")
        free = self.free()
        if need.gpu_memory_mb is None:
            open_ = [i for i in self._reserved if self._runs[i] == 0]
        else:
            open_ = [i for i in self._reserved if i not in self._whole and free[i] >= need.gpu_memory_mb]
        if len(open_) < need.gpus:
            return None
        chosen = sorted(open_, key=lambda i: (-free[i], i))[: need.gpus]
        amount = {i: free[i] if need.gpu_memory_mb is None else need.gpu_memory_mb for i in chosen}
        for i in chosen:
            self._reserved[i] += amount[i]
            self._runs[i] += 1
            if need.gpu_memory_mb is None:
                self._whole.add(i)
        return Placement(tuple((i, amount[i]) for i in chosen), whole=need.gpu_memory_mb is None)

    def release(self, placement: Placement) -> None:
        for index, amount in placement.shares:
            self._reserved[index] -= amount
            self._runs[index] -= 1
            if placement.whole:
                self._whole.discard(index)
