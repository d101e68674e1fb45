"""Grading: time the reference and the candidate from outside the sandbox, check every answer here.

The harness runs the trusted reference (`driver.py` in a folder of its own) before and after the
candidate, each in the sandbox, never both at once; it measures wall time between writing a `run`
request and reading its reply, so no clock inside the sandbox matters. Each request has a fresh seed
from `secrets` and shapes drawn now (timing shapes jittered around the task's, check shapes random),
so nothing can be cached or special-cased. After each run the harness fetches one iteration chosen
now, compares it with its own reference (allclose at the task's tolerance) and with the checksum the
reply claimed, so an early reply or skipped iteration is caught.
"""

from __future__ import annotations

import base64
import importlib
import math
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from alphalab.sdk import CandidateStep, StepFailed

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import driver  # noqa: E402

TASKS = sorted(p.stem for p in (HERE / "tasks").glob("*.py") if not p.stem.startswith("_"))
REPEATS = 5
MAX_ANSWER = 8 << 20


def task(name):
    return importlib.import_module(f"tasks.{name}")


def draw_dims(module, timing):
    if timing:
        return {
            k: max(1, int(v * (0.8 + 0.4 * secrets.randbelow(1000) / 1000))) for k, v in module.DIMS.items()
        }
    return {k: lo + secrets.randbelow(hi - lo + 1) for k, (lo, hi) in module.CHECK.items()}


def reference_output(name, dims, seed, index, iterations):
    module = task(name)
    with torch.no_grad():
        model = module.Model(*module.get_init_inputs())
        batch = [t.cpu() for t in driver.inputs(module, dims, seed, iterations)[index]]
        return model(*batch).float()


def decode(answer, which):
    if not isinstance(answer, dict) or not isinstance(answer.get("output"), str):
        raise StepFailed(f"malformed: {which} is not an object with an output")
    try:
        data = np.frombuffer(base64.b64decode(answer["output"]), dtype="<f4")
        return torch.from_numpy(data.copy()).reshape([int(s) for s in answer["shape"]])
    except Exception as err:  # noqa: BLE001
        raise StepFailed(f"malformed: {which} ({type(err).__name__})") from None


def compare(name, got, want, which):
    tol = task(name).TOLERANCE
    if tuple(got.shape) != tuple(want.shape):
        raise StepFailed(
            f"incorrect: {name}: {which} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        )
    if not torch.allclose(got, want, atol=tol, rtol=tol):
        error = float((got - want).abs().max())
        raise StepFailed(f"incorrect: {name}: {which} differs from the reference by up to {error:.3g}")


def timed_runs(step, name, check):
    """REPEATS medians of wall time for `run` requests (after one warm-up), verified if `check`."""
    module = task(name)
    times = []
    for repeat in range(REPEATS + 1):
        dims, seed, n = draw_dims(module, True), secrets.randbits(31), module.ITERATIONS
        request = {"op": "run", "task": name, "dims": dims, "seed": seed, "iterations": n}
        begun = time.perf_counter()
        answer = step.ask(request, f"{name} run {repeat}")
        elapsed = time.perf_counter() - begun
        if repeat:
            times.append(elapsed / n)
        if not check:
            continue
        sums = answer.get("checksums") if isinstance(answer, dict) else None
        if not isinstance(sums, list) or len(sums) != n:
            raise StepFailed(f"malformed: {name} run {repeat} has no {n} checksums")
        index = secrets.randbelow(n)
        got = decode(step.ask({"op": "fetch", "index": index}), f"{name} fetch")
        compare(name, got, reference_output(name, dims, seed, index, n), f"iteration {index} of a run")
        claimed = sums[index]
        actual = driver.checksum(got, driver.weights(got.numel(), seed))
        scale = float(got.abs().sum()) * 1e-3 + 1e-3
        if not isinstance(claimed, int | float) or not abs(claimed - actual) <= scale:
            raise StepFailed(
                f"incorrect: {name}: the checksum of iteration {index} does not match its output"
            )
    return times


def checks(step, name):
    module = task(name)
    for case in range(3):
        dims = module.DIMS if case == 0 else draw_dims(module, False)
        seed = secrets.randbits(31)
        got = decode(step.ask({"op": "check", "task": name, "dims": dims, "seed": seed}), f"{name} check")
        compare(name, got, reference_output(name, dims, seed, 0, 1), f"check {case} {dims}")


def reference_folder(scratch: Path) -> Path:
    folder = scratch / "reference"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(HERE / "driver.py", folder / "driver.py")
    shutil.copytree(HERE / "tasks", folder / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def reference_times(folder, seconds, memory_mb, hidden):
    step = CandidateStep(folder, "reference", seconds=seconds, memory_mb=memory_mb, hidden=hidden,
                         entry="driver.py", max_answer_bytes=MAX_ANSWER)  # fmt: skip
    with step:
        return {name: timed_runs(step, name, False) for name in TASKS}


def grade(workspace: Path, seconds: float, memory_mb: int, hidden, entry: str, scratch: Path):
    begun = time.monotonic()
    folder = reference_folder(scratch)
    failures: list[str] = []
    try:
        before = reference_times(folder, seconds, memory_mb, hidden)
    except StepFailed as failed:
        raise RuntimeError(f"the reference failed: {failed}") from None
    cand: dict[str, list[float]] = {}
    step = CandidateStep(workspace, "predict", seconds=seconds, memory_mb=memory_mb, hidden=hidden,
                         entry=entry, max_answer_bytes=MAX_ANSWER, unit="answers")  # fmt: skip
    try:
        with step:
            for name in TASKS:
                checks(step, name)
                cand[name] = timed_runs(step, name, True)
    except StepFailed as failed:
        failures.append(str(failed))
    if failures:
        return {"valid": False, "value": None, "metrics": {}, "failures": failures}
    after = reference_times(folder, seconds, memory_mb, hidden)
    metrics = {}
    for name in TASKS:
        ref = statistics.median(before[name] + after[name])
        metrics[f"reference_ms_{name}"] = ref * 1e3
        metrics[f"speedup_{name}"] = ref / statistics.median(cand[name])
    speedups = [metrics[f"speedup_{name}"] for name in TASKS]
    value = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    metrics["speedup"] = value
    return {"valid": True, "value": value, "metrics": metrics, "failures": [],
            "grade_seconds": round(time.monotonic() - begun, 2)}  # fmt: skip
