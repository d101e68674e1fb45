"""Grading: time the reference and the candidate side by side from outside the sandbox, check here.

Two sandboxed processes stay up for the whole grading: the trusted reference (`driver.py` in a folder
of its own, torch at one thread) and the candidate's `predict`. Only one computes at a time. Per task,
the candidate is first checked on random small shapes, then reference and candidate are timed in
rounds: each round draws one shape (jittered around the task's) and one seed from `secrets`, sends the
same `run` request to both, in alternating order (AB, BA, ...), and records the ratio of their wall
times, measured here between writing a request and reading its reply, so no clock inside a sandbox
matters. The first rounds are warm-up; the speedup is the median of the remaining rounds' ratios, so
load that comes and goes on the machine hits both sides of a round alike. After every round one
iteration chosen now is fetched from both and compared (allclose at the task's tolerance), and the
checksum the candidate claimed for it is recomputed, so an early reply or skipped iteration is caught.
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
WARMUP_ROUNDS = 2
MIN_ROUNDS, MAX_ROUNDS = 4, 16  # timed rounds per task (even: as many AB as BA), time permitting
TIMED_SHARE = 0.5  # of the step's seconds, spread over the tasks' rounds; the rest is margin
MAX_ANSWER = 8 << 20


def task(name):
    return importlib.import_module(f"tasks.{name}")


def draw_dims(module, timing):
    if timing:
        return {
            k: max(1, int(v * (0.8 + 0.4 * secrets.randbelow(1000) / 1000))) for k, v in module.DIMS.items()
        }
    return {k: lo + secrets.randbelow(hi - lo + 1) for k, (lo, hi) in module.CHECK.items()}


class Reference:
    """The reference process; its failure is the harness's fault, so it raises RuntimeError."""

    def __init__(self, step: CandidateStep) -> None:
        self.step = step

    def ask(self, request, which):
        try:
            return self.step.ask(request, which)
        except StepFailed as failed:
            raise RuntimeError(f"the reference failed: {failed}") from None


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


def checks(step, reference, name):
    module = task(name)
    for case in range(3):
        dims = module.DIMS if case == 0 else draw_dims(module, False)
        request = {"op": "check", "task": name, "dims": dims, "seed": secrets.randbits(31)}
        got = decode(step.ask(request, f"{name} check"), f"{name} check")
        want = decode(reference.ask(request, f"{name} reference check"), "the reference")
        compare(name, got, want, f"check {case} {dims}")


def verify(step, reference, name, answer, request, which):
    """One iteration of the run just answered, chosen now, against the reference's and its checksum."""
    n = request["iterations"]
    sums = answer.get("checksums") if isinstance(answer, dict) else None
    if not isinstance(sums, list) or len(sums) != n:
        raise StepFailed(f"malformed: {which} has no {n} checksums")
    index = secrets.randbelow(n)
    got = decode(step.ask({"op": "fetch", "index": index}, f"{which} fetch"), f"{which} fetch")
    want = decode(reference.ask({"op": "fetch", "index": index}, f"{which} reference"), "the reference")
    compare(name, got, want, f"iteration {index} of a run")
    claimed = sums[index]
    actual = driver.checksum(got, driver.weights(got.numel(), request["seed"]))
    scale = float(got.abs().sum()) * 1e-3 + 1e-3
    if not isinstance(claimed, int | float) or not abs(claimed - actual) <= scale:
        raise StepFailed(f"incorrect: {name}: the checksum of iteration {index} does not match its output")


def timed(side, request, which):
    begun = time.perf_counter()
    answer = side.ask(request, which)
    return (time.perf_counter() - begun) / request["iterations"], answer


def rounds(step, reference, name, until):
    """(reference, candidate) seconds per iteration for each timed round, after the warm-up rounds.

    MIN_ROUNDS always; more, up to MAX_ROUNDS, while the clock is before `until` (monotonic)."""
    module = task(name)
    out = []
    for number in range(WARMUP_ROUNDS + MAX_ROUNDS):
        if len(out) >= MIN_ROUNDS and len(out) % 2 == 0 and time.monotonic() > until:
            break
        request = {"op": "run", "task": name, "dims": draw_dims(module, True),
                   "seed": secrets.randbits(31), "iterations": module.ITERATIONS}  # fmt: skip
        which = f"{name} run {number}"
        if number % 2:
            cand, answer = timed(step, request, which)
            ref, _ = timed(reference, request, f"{which} reference")
        else:
            ref, _ = timed(reference, request, f"{which} reference")
            cand, answer = timed(step, request, which)
        verify(step, reference, name, answer, request, which)
        if number >= WARMUP_ROUNDS:
            out.append((ref, cand))
    return out


def reference_folder(scratch: Path) -> Path:
    folder = scratch / "reference"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(HERE / "driver.py", folder / "driver.py")
    shutil.copytree(HERE / "tasks", folder / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def summary(times):
    metrics = {}
    for name, pairs in times.items():
        metrics[f"reference_ms_{name}"] = statistics.median(ref for ref, _ in pairs) * 1e3
        metrics[f"candidate_ms_{name}"] = statistics.median(cand for _, cand in pairs) * 1e3
        metrics[f"speedup_{name}"] = statistics.median(ref / cand for ref, cand in pairs)
    speedups = [metrics[f"speedup_{name}"] for name in times]
    metrics["speedup"] = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    return metrics


def grade(workspace: Path, seconds: float, memory_mb: int, hidden, entry: str, scratch: Path):
    begun = time.monotonic()
    limits = {"seconds": seconds, "memory_mb": memory_mb, "hidden": hidden, "max_answer_bytes": MAX_ANSWER}
    times: dict[str, list[tuple[float, float]]] = {}
    try:
        with (
            CandidateStep(reference_folder(scratch), "reference", entry="driver.py", **limits) as ref_step,
            CandidateStep(workspace, "predict", entry=entry, unit="answers", **limits) as step,
        ):
            reference = Reference(ref_step)
            for left, name in zip(range(len(TASKS), 0, -1), TASKS, strict=True):
                checks(step, reference, name)
                share = (begun + TIMED_SHARE * seconds - time.monotonic()) / left
                times[name] = rounds(step, reference, name, time.monotonic() + share)
    except StepFailed as failed:
        return {"valid": False, "value": None, "metrics": {}, "failures": [str(failed)]}
    metrics = summary(times)
    return {"valid": True, "value": metrics["speedup"], "metrics": metrics, "failures": [],
            "grade_seconds": round(time.monotonic() - begun, 2)}  # fmt: skip
