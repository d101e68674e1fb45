"""The pure parts of scoring, numpy only: the test windows, decoding answers, bits per byte and the
checks an answer must pass (normalised, causal, the same when asked again).

A model answers a window of W bytes with W rows of 256 log-probabilities: row i is log P(x_i | x_<i),
row 0 conditioned on nothing. bpb = sum over bytes of -log2 P(byte), divided by the number of bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from alphalab.sdk import StepFailed

VOCAB = 256
WINDOW = 256
WINDOWS = 128
WINDOW_SEED = 20260  # fixed: every grading scores the same windows, so runs compare
NORMALISED_TOLERANCE = 1e-3  # |sum of probabilities - 1| per row
SAME_TOLERANCE = 1e-4  # largest change of a log-probability that counts as "did not move"


def test_windows(documents: dict[str, bytes], count: int = WINDOWS, size: int = WINDOW):
    """`count` windows of `size` bytes from the documents at least that long, each document drawn in
    proportion to its length, offsets uniform; a fixed seed. Returns (document names, windows)."""
    eligible = [(name, text) for name, text in documents.items() if len(text) >= size]
    if not eligible:
        raise ValueError(f"no test document holds {size} bytes")
    lengths = np.array([len(text) - size + 1 for _, text in eligible], dtype=np.float64)
    rng = np.random.default_rng(WINDOW_SEED)
    picks = rng.choice(len(eligible), size=count, p=lengths / lengths.sum())
    names, windows = [], []
    for pick in picks:
        name, text = eligible[pick]
        offset = int(rng.integers(0, len(text) - size + 1))
        names.append(name)
        windows.append(text[offset : offset + size])
    return names, windows


def encode_window(window: bytes) -> dict[str, str]:
    return {"window": base64.b64encode(window).decode()}


def decode_answer(answer: object, size: int, which: str) -> np.ndarray:
    """The answer's W×256 float64 log-probabilities, or StepFailed (malformed / wrong shape / not finite)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("logprobs"), str):
        raise StepFailed(f"malformed: {which} is not an object with a base64 'logprobs' string")
    try:
        raw = base64.b64decode(answer["logprobs"], validate=True)
    except (binascii.Error, ValueError):
        raise StepFailed(f"malformed: {which}: 'logprobs' is not valid base64") from None
    if len(raw) != size * VOCAB * 4:
        raise StepFailed(
            f"wrong shape: {which} holds {len(raw)} bytes, not {size}×{VOCAB} little-endian float32"
        )
    rows = np.frombuffer(raw, dtype="<f4").reshape(size, VOCAB).astype(np.float64)
    # -inf is a legal log-probability (probability 0); NaN and +inf are not.
    if np.isnan(rows).any() or np.isposinf(rows).any():
        raise StepFailed(f"not finite: {which} holds NaN or +infinity")
    return rows


def normalisation_error(rows: np.ndarray) -> float:
    """The largest |sum_j exp(row_ij) - 1| over the rows."""
    return float(np.abs(np.exp(rows).sum(axis=1) - 1.0).max())


def check_normalised(rows: np.ndarray, which: str) -> None:
    error = normalisation_error(rows)
    if not error <= NORMALISED_TOLERANCE:
        raise StepFailed(
            f"unnormalised: {which}: a row's probabilities sum to 1 ± {error:.3g} "
            f"(allowed ± {NORMALISED_TOLERANCE:g})"
        )


def target_logprobs(rows: np.ndarray, window: bytes) -> np.ndarray:
    """log P(x_i | x_<i) of the window's own bytes, one per position."""
    targets = np.frombuffer(window, dtype=np.uint8)
    return rows[np.arange(len(targets)), targets]


def bpb(logprobs: np.ndarray) -> float:
    """Bits per byte from natural-log probabilities of the bytes that occurred."""
    return float(-np.asarray(logprobs, dtype=np.float64).sum() / np.log(2) / len(logprobs))


def moved(first: np.ndarray, second: np.ndarray) -> float:
    """How far two answers' log-probabilities differ (0 where both are -inf)."""
    both_zero = np.isneginf(first) & np.isneginf(second)
    gap = np.where(both_zero, 0.0, np.abs(first - second))
    return float(np.nan_to_num(gap, nan=np.inf).max()) if gap.size else 0.0


def check_causal(original: np.ndarray, probed: np.ndarray, kept: int, which: str) -> None:
    """Rows 0..kept (conditioned only on bytes before `kept`, which the probe left alone) must not move."""
    gap = moved(original[: kept + 1], probed[: kept + 1])
    if not gap <= SAME_TOLERANCE:
        raise StepFailed(
            f"non-causal: {which}: changing the bytes from position {kept} on moved the predictions of "
            f"positions 0..{kept} by up to {gap:.3g}; row i may only depend on bytes before i"
        )


def check_repeat(first: np.ndarray, again: np.ndarray, which: str) -> None:
    gap = moved(first, again)
    if not gap <= SAME_TOLERANCE:
        raise StepFailed(
            f"training during scoring: {which} was answered differently by a fresh predict process (up "
            f"to {gap:.3g}); the model must not change while it is graded"
        )


def summary(picked: np.ndarray, names: list[str]) -> dict[str, float]:
    """bpb over windows × positions of target log-probabilities, and its breakdowns: the first and last
    quarter of the positions (little context, much context) and each test document (at most 16)."""
    quarter = picked.shape[1] // 4
    metrics = {
        "bpb": bpb(picked.ravel()),
        "bpb_early": bpb(picked[:, :quarter].ravel()),
        "bpb_late": bpb(picked[:, -quarter:].ravel()),
    }
    for name in sorted(set(names))[:16]:
        key = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:60]
        metrics[f"bpb_{key}"] = bpb(picked[np.array(names) == name].ravel())
    return metrics
