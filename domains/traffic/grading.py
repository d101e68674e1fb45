"""Grading: the harness runs the candidate's `predict` step itself and asks for one forecast at a time.

Each request carries only readings at or before its origin, and the next request is sent only after
the answer to this one has been read, so the candidate never holds a value it is asked to forecast,
and test targets never enter its workspace. The candidate runs in the sandbox with its workspace
read-only (nothing it learns while being graded survives the run) and the data files masked; the
sandbox's watch kills it at the wall-clock limit, which also unblocks a harness stuck writing to a
candidate that stopped reading. The first bad answer ends the dialogue and makes the result invalid,
with the reason named first: `crashed`, `stopped early`, `timed out`, `malformed`, `wrong shape` or
`not finite`; forecasts that never change from one origin to the next are invalid as `constant`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from data import Series
from evaluation import HORIZONS, Splits, history_steps, metrics, targets, test_origins

from alphalab.sdk import CandidateStep, DataError, StepFailed, finite_number

__all__ = ["grade"]

_MAX_MAGNITUDE = 1e15  # no count is this large; beyond it a number is an attack on the arithmetic
_PREDICT_PROCESSES = 128  # threads count: torch starts a few dozen


def grade(
    series: Series,
    splits: Splits,
    workspace: Path,
    seconds: float,
    memory_mb: int,
    hidden: tuple[Path, ...],
    entry: str,
) -> dict[str, Any]:
    """The verdict: `valid`, the primary metric `value`, all `metrics`, `failures`, and what it took.

    `hidden` are the data files the candidate must not see while it forecasts; `entry` its file name.
    """
    if not workspace.is_dir():
        raise DataError(f"--workspace: {workspace} is not a folder; run `prepare` into it first")
    origins = test_origins(splits)
    begun = time.monotonic()
    shape = (len(HORIZONS), len(series.sensors))
    step = CandidateStep(
        workspace, "predict", seconds=seconds, memory_mb=memory_mb, hidden=hidden, entry=entry,
        processes=_PREDICT_PROCESSES, requests=len(origins), unit="forecasts",
    )  # fmt: skip
    forecasts, failure = _converse(step, _requests(series, origins), len(origins), shape)
    if failure is None:
        failure = _constant(forecasts)
    verdict: dict[str, Any] = {"valid": failure is None, "value": None, "metrics": {}, "failures": []}
    if failure is None:
        verdict["metrics"] = metrics(np.stack(forecasts), targets(series, origins), series.step_minutes)
        verdict["value"] = verdict["metrics"]["mae"]
    else:
        verdict["failures"] = [failure]
    return {**verdict, "origins": len(origins), "predict_seconds": round(time.monotonic() - begun, 3)}


def _requests(series: Series, origins: np.ndarray) -> Iterator[bytes]:
    """One JSON line per origin: its time and the last week of readings up to it, null where missing.

    Whole numbers are written without a decimal point: counts are, and parse twice as fast that way.
    """
    rows = [json.dumps([_compact(value) for value in row]) for row in series.values.tolist()]
    window = history_steps(series)
    for origin in origins:
        history = ",".join(rows[max(0, origin - window + 1) : origin + 1])
        yield f'{{"origin": "{series.timestamps[origin]}", "history": [{history}]}}\n'.encode()


def _compact(value: float) -> float | int | None:
    if value != value:
        return None
    return int(value) if value.is_integer() else value


def _converse(
    step: CandidateStep, requests: Iterator[bytes], total: int, shape: tuple[int, int]
) -> tuple[list[np.ndarray], str | None]:
    """Every forecast, or the first failure as a sentence naming its kind, the forecast and the cause."""
    forecasts: list[np.ndarray] = []
    try:
        with step:
            for request in requests:
                which = f"forecast {len(forecasts) + 1} of {total}"
                forecasts.append(_forecast(step.ask(request, which), shape, which))
    except StepFailed as failed:
        return forecasts, str(failed)
    return forecasts, None


def _constant(forecasts: list[np.ndarray]) -> str | None:
    """A forecast that is the same at every origin ignores the history it is given: not a forecast."""
    if len(forecasts) > 1 and np.ptp(np.stack(forecasts), axis=0).max() == 0:
        return f"constant: all {len(forecasts)} forecasts are identical, whatever the history"
    return None


def _forecast(parsed: Any, shape: tuple[int, int], which: str) -> np.ndarray:
    """The forecast in a parsed answer, or `StepFailed` naming what is wrong with it and `which` it was.

    The structure must be a list of `shape[0]` lists of `shape[1]` numbers (null for a value it cannot
    forecast is refused as not finite), and a number beyond `_MAX_MAGNITUDE` is refused.
    """
    expected = '{"forecast": [[value per sensor] per horizon]}'
    if not isinstance(parsed, dict) or "forecast" not in parsed:
        raise StepFailed(f"malformed: {which} is not an object with a forecast; expected {expected}")
    rows = parsed["forecast"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise StepFailed(f"malformed: {which}'s forecast is not a list of lists; expected {expected}")
    found = (len(rows), *sorted({len(row) for row in rows}))
    if len(found) > 2:
        raise StepFailed(
            f"wrong shape: {which} has rows of lengths {found[1:]}; expected {shape} (horizons, sensors)"
        )
    if (found if len(found) == 2 else (found[0], 0)) != shape:
        raise StepFailed(f"wrong shape: {which} is {found}; expected {shape} (horizons, sensors)")
    values = [value for row in rows for value in row]
    if not all(value is None or _number(value) for value in values):
        raise StepFailed(f"malformed: {which} holds values that are not numbers; expected {expected}")
    if not all(value is None or finite_number(value, _MAX_MAGNITUDE) or value != value for value in values):
        raise StepFailed(f"malformed: {which} holds a number beyond {_MAX_MAGNITUDE:g}")
    forecast = np.array([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=float)
    if not np.isfinite(forecast).all():
        raise StepFailed(f"not finite: {which} holds NaN, infinite or null values")
    return forecast


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
