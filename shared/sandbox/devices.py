"""Which GPUs a sandboxed process may use: the grant of the run it belongs to.

A worker grants each of its runs the devices it placed the run on (`granted`, for the task that runs
it; a CPU run is granted none). Every process started under a grant gets `CUDA_VISIBLE_DEVICES` set to
them, with `CUDA_DEVICE_ORDER=PCI_BUS_ID` so that the indices are nvidia-smi's, and in bubblewrap the
`/dev/nvidia*` nodes; under an empty grant it gets `CUDA_VISIBLE_DEVICES=` (CUDA then sees no device)
and no node at all. A process started for a run carries its grant in that variable, so the harness's
own sandboxed steps (its candidate's `predict`) get the same devices as the run's `fit`.

Where nothing granted anything (`alphalab evaluate`, the Explorer's checks, a test), every GPU stays
visible, as before there were grants. Pinning is by the variable; the nodes are all or none, so a
candidate that resets the variable could reach its neighbours' GPUs on a shared host (the namespaces
and none modes leave /dev as it is anyway).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["ORDER", "VISIBLE", "environment", "grant", "granted", "nodes"]

VISIBLE = "CUDA_VISIBLE_DEVICES"
ORDER = "CUDA_DEVICE_ORDER"
_BUS_ORDER = "PCI_BUS_ID"  # nvidia-smi's order; CUDA's default (FASTEST_FIRST) may number them otherwise
_GRANT: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("gpu_grant", default=None)


@contextlib.contextmanager
def granted(devices: Sequence[int | str]) -> Iterator[None]:
    """Within this block (this task, and the tasks and threads it starts), processes started in the
    sandbox may use exactly `devices` (nvidia-smi indices; none: a CPU run)."""
    token = _GRANT.set(tuple(str(device) for device in devices))
    try:
        yield
    finally:
        _GRANT.reset(token)


def grant() -> tuple[str, ...] | None:
    """The devices granted here: this task's grant, else this process's own (a harness started for a
    run has it in `CUDA_VISIBLE_DEVICES`); None where nothing was granted (every device)."""
    own = _GRANT.get()
    if own is not None:
        return own
    inherited = os.environ.get(VISIBLE)
    if inherited is None:
        return None
    return tuple(part.strip() for part in inherited.split(",") if part.strip())


def environment() -> dict[str, str]:
    """The variables a sandboxed process gets for the grant in force (none without one)."""
    devices = grant()
    if devices is None:
        return {}
    env = {VISIBLE: ",".join(devices)}
    if devices:
        order = os.environ.get(ORDER) if _GRANT.get() is None else None  # an inherited grant keeps its order
        env[ORDER] = order or _BUS_ORDER
    return env


def nodes(dev: Path = Path("/dev")) -> list[str]:
    """The GPU device nodes to bind into a sandbox: every `/dev/nvidia*` (the devices, `nvidiactl`,
    `nvidia-uvm`, `nvidia-uvm-tools`, `nvidia-modeset`, `nvidia-caps`) unless the grant is empty."""
    devices = grant()
    if devices is not None and not devices:
        return []
    return sorted(str(path) for path in dev.glob("nvidia*"))
