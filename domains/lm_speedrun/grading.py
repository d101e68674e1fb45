"""Grading: the parameter cap, then the candidate's `predict` dialogue over the test windows, then bpb.

The dialogue interleaves, in an order drawn now with `secrets`, two kinds of request the candidate
cannot tell apart: the fixed test windows (scored) and causality probes (a test window whose bytes
from a random position k on are replaced by test text from a random place, so the probe reads like
any window: rows 0..k must not move). Then a fresh predict process, which has seen nothing, is asked
again a few windows from late in the dialogue: its answers must match, so a model that learned from
the test text while graded (even one that answers exact repeats from memory) is caught. The workspace
is read-only during `predict`, so nothing persists between processes or gradings.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import numpy as np
import scoring

from alphalab.sdk import CandidateStep, StepFailed

PARAM_CAP = 4_000_000  # counted in model.pt; a GPU campaign may raise it here (meta.json tells candidates)
BYTES_PER_PARAMETER = 4
CODE_SLACK_BYTES = 8 << 20  # candidate code, config, logs: what the workspace may hold besides weights
MODEL_FILE = "model.pt"
PROBES = 4
REPEATS = 4
REPEAT_SPAN = 32  # the fresh process re-asks windows among the last REPEAT_SPAN scored
REPEAT_SECONDS = 30.0  # at most, for the fresh process: starting it and a few answers


def workspace_bytes(workspace: Path) -> int:
    """Apparent bytes under `workspace` (links not followed), by `du`: it walks a tree of any depth,
    which a candidate may leave to crash a recursive walk."""
    measured = subprocess.run(["du", "-s", "-b", "--", str(workspace)], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
    if measured.returncode != 0:
        raise StepFailed(
            f"parameter cap: the workspace could not be measured ({measured.stderr.strip()[:200]})"
        )
    return int(measured.stdout.split()[0])


def count_parameters(path: Path) -> int:
    """numel of every tensor in a torch file, however nested (dicts, lists, tuples); weights_only."""
    import torch

    def count(value: object) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel()
        if isinstance(value, dict):
            return sum(count(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(count(v) for v in value)
        return 0

    return count(torch.load(path, map_location="cpu", weights_only=True))


def check_cap(workspace: Path, prepared_bytes: int, cap: int) -> int:
    """The model's parameter count, or StepFailed naming the parameter cap."""
    allowed = prepared_bytes + BYTES_PER_PARAMETER * cap + CODE_SLACK_BYTES
    used = workspace_bytes(workspace)
    if used > allowed:
        raise StepFailed(
            f"parameter cap: the workspace holds {used:,} bytes, more than the data plus {cap:,} float32 "
            f"parameters and {CODE_SLACK_BYTES >> 20} MB of code allow ({allowed:,}); weights count "
            "wherever they are stored"
        )
    model = workspace / MODEL_FILE
    if not model.is_file():
        raise StepFailed(f"parameter cap: no {MODEL_FILE} in the workspace to count the parameters of")
    try:
        parameters = count_parameters(model)
    except Exception as err:  # noqa: BLE001 - any load failure: the file cannot be counted
        raise StepFailed(
            f"parameter cap: {MODEL_FILE} is not a torch file of tensors ({type(err).__name__})"
        ) from None
    if parameters > cap:
        raise StepFailed(
            f"parameter cap: {MODEL_FILE} holds {parameters:,} parameters, over the cap of {cap:,}"
        )
    return parameters


def plan(windows: list[bytes], text: bytes):
    """The dialogue: ("score", i) for every window and PROBES ("probe", i, k, window) requests whose
    bytes from k on come from a random place in `text` (its first byte differing from the original's),
    in a secret order."""
    size = len(windows[0])
    order = list(range(len(windows)))
    _shuffle(order)
    requests: list[tuple] = [("score", i) for i in order]
    for _ in range(PROBES):
        i, kept = secrets.randbelow(len(windows)), 1 + secrets.randbelow(size - 2)
        tail = windows[i][kept:]
        while tail[0] == windows[i][kept]:
            start = secrets.randbelow(len(text) - size)
            tail = text[start : start + size - kept]
        requests.insert(secrets.randbelow(len(requests) + 1), ("probe", i, kept, windows[i][:kept] + tail))
    return requests


def _shuffle(items: list) -> None:
    for i in range(len(items) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        items[i], items[j] = items[j], items[i]


def _answer(step: CandidateStep, window: bytes, which: str) -> np.ndarray:
    answer = scoring.decode_answer(step.ask(scoring.encode_window(window), which), len(window), which)
    scoring.check_normalised(answer, which)
    return answer


def dialogue(step: CandidateStep, windows: list[bytes], text: bytes):
    """Every answer of the plan, checked for shape and normalisation: (rows of each window, in the order
    they were scored; probes as (i, k, rows))."""
    rows: dict[int, np.ndarray] = {}
    probes = []
    for n, request in enumerate(plan(windows, text)):
        if request[0] == "score":
            rows[request[1]] = _answer(step, windows[request[1]], f"answer {n + 1}")
        else:
            probes.append((request[1], request[2], _answer(step, request[3], f"answer {n + 1}")))
    return rows, probes


def repeats(rows: dict[int, np.ndarray]) -> list[int]:
    """REPEATS windows among the last REPEAT_SPAN scored (where a learning model has drifted most)."""
    late = list(rows)[-REPEAT_SPAN:]
    _shuffle(late)
    return late[:REPEATS]


def grade(workspace: Path, corpus, seconds: float, memory_mb: int, hidden, entry: str) -> dict:
    """The verdict: bpb over the test windows and its breakdowns, or the failures."""
    begun = time.monotonic()
    names, windows = scoring.test_windows(corpus.test)
    prepared = len(corpus.joined("train")) + len(corpus.joined("val")) + (64 << 10)  # meta.json and slack
    text = corpus.joined("test")
    limits = {"memory_mb": memory_mb, "hidden": hidden, "entry": entry}
    try:
        parameters = check_cap(workspace, prepared, PARAM_CAP)
        with CandidateStep(workspace, "predict", seconds=seconds, requests=len(windows) + PROBES,
                           **limits) as step:  # fmt: skip
            rows, probes = dialogue(step, windows, text)
        again = repeats(rows)
        with CandidateStep(workspace, "predict", seconds=min(seconds, REPEAT_SECONDS), requests=REPEATS,
                           **limits) as step:  # fmt: skip
            fresh = [
                _answer(step, windows[i], f"a fresh process's answer {n + 1}") for n, i in enumerate(again)
            ]
    except StepFailed as failed:
        return {"valid": False, "value": None, "metrics": {}, "failures": [str(failed)]}
    failures = []
    for i, kept, answer in probes:
        try:
            scoring.check_causal(rows[i], answer, kept, f"test window {i}")
        except StepFailed as failed:
            failures.append(str(failed))
            break
    for i, answer in zip(again, fresh, strict=True):
        try:
            scoring.check_repeat(rows[i], answer, f"test window {i}")
        except StepFailed as failed:
            failures.append(str(failed))
            break
    if failures:
        return {"valid": False, "value": None, "metrics": {}, "failures": failures}
    picked = np.stack([scoring.target_logprobs(rows[i], window) for i, window in enumerate(windows)])
    metrics = {**scoring.summary(picked, names), "parameters": float(parameters)}
    return {"valid": True, "value": metrics["bpb"], "metrics": metrics, "failures": [],
            "windows": len(windows), "grade_seconds": round(time.monotonic() - begun, 2)}  # fmt: skip
