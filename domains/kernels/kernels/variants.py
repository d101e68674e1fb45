"""Which implementation each task runs, from the plan's `impl_<task>` (see `IMPLS`).

fused: `kernels/<task>.py`'s ModelNew (torch ops); compile: that ModelNew under `torch.compile`
(`compile_mode`, dynamic shapes); cpp: the C++ extension op (`native.py`); numba: the numba kernel
(`jit.py`, `numba_tile`). "reference" and "reference-compile" (the task's Model, eager or compiled)
are what the harness's baselines run; the search never picks them.
"""

from __future__ import annotations

import importlib

IMPLS = {
    "attention": ("fused", "compile"),
    "elementwise_chain": ("fused", "compile", "numba"),
    "gelu": ("fused", "compile", "cpp", "numba"),
    "layernorm": ("fused", "compile", "cpp"),
    "matmul_bias_relu": ("fused", "compile"),
    "rmsnorm": ("fused", "compile", "cpp", "numba"),
    "row_max": ("fused", "compile", "cpp", "numba"),
    "softmax": ("fused", "compile", "cpp"),
}
BASELINES = ("reference", "reference-compile")
CPU_ONLY = ("cpp", "numba")


def impl(plan, name):
    chosen = plan[f"impl_{name}"]
    if chosen not in IMPLS[name] + BASELINES:
        raise ValueError(f"impl_{name}: {chosen!r} is not one of {IMPLS[name] + BASELINES}")
    return chosen


def model(name, init_args, plan, device):
    chosen = impl(plan, name)
    if chosen in CPU_ONLY and device != "cpu":
        raise ValueError(f"impl_{name}: {chosen} runs on the CPU only, not on {device}")
    if chosen in BASELINES:
        base = importlib.import_module(f"tasks.{name}").Model(*init_args)
    elif chosen == "cpp":
        from kernels.native import Native

        base = Native(name, *init_args)
    elif chosen == "numba":
        from kernels.jit import Jit

        base = Jit(name, *init_args, tile=plan["numba_tile"])
    else:
        base = importlib.import_module(f"kernels.{name}").ModelNew(*init_args)
    base = base.to(device)
    if chosen in ("compile", "reference-compile"):
        import torch

        return torch.compile(base, mode=plan["compile_mode"], dynamic=True)
    return base
