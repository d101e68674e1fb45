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

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from data import Series
from evaluation import HORIZONS, Splits, history_steps, metrics, targets, test_origins

from shared.errors import ConfigError
from shared.sandbox import Access, Limits, Running, describe, started, tail

__all__ = ["grade"]

CANDIDATE_FILE = "candidate.py"
_MAX_ANSWER_BYTES = 1 << 20
_MAX_MAGNITUDE = 1e15  # no count is this large; beyond it a number is an attack on the arithmetic
_EXIT_GRACE_SECONDS = 2.0
_PREDICT_FILE_MB = 64
_PREDICT_PROCESSES = 128  # threads count: torch starts a few dozen
_STDERR_CHARS = 1500


def grade(
    series: Series, splits: Splits, workspace: Path, seconds: float, memory_mb: int, hidden: tuple[Path, ...]
) -> dict[str, Any]:
    """The verdict: `valid`, the primary metric `value`, all `metrics`, `failures`, and what it took.

    `hidden` are the data files the candidate must not see while it forecasts.
    """
    if not workspace.is_dir():
        raise ConfigError(f"--workspace: {workspace} is not a folder; run `prepare` into it first")
    origins = test_origins(splits)
    started = time.monotonic()
    if (workspace / CANDIDATE_FILE).is_file():
        limits = Limits(
            wall_seconds=seconds,
            cpu_seconds=seconds,
            memory_mb=memory_mb,
            file_mb=_PREDICT_FILE_MB,
            processes=_PREDICT_PROCESSES,
        )
        shape = (len(HORIZONS), len(series.sensors))
        access = Access(workspace, writable=False, hidden=hidden)
        requests = _requests(series, origins)
        forecasts, failure = _converse(workspace, access, requests, len(origins), shape, limits)
        if failure is None:
            failure = _constant(forecasts)
    else:
        forecasts, failure = [], f"crashed: no {CANDIDATE_FILE} in the workspace"
    verdict: dict[str, Any] = {"valid": failure is None, "value": None, "metrics": {}, "failures": []}
    if failure is None:
        verdict["metrics"] = metrics(np.stack(forecasts), targets(series, origins), series.step_minutes)
        verdict["value"] = verdict["metrics"]["mae"]
    else:
        verdict["failures"] = [failure]
    return {**verdict, "origins": len(origins), "predict_seconds": round(time.monotonic() - started, 3)}


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
    workspace: Path,
    access: Access,
    requests: Iterator[bytes],
    total: int,
    shape: tuple[int, int],
    limits: Limits,
) -> tuple[list[np.ndarray], str | None]:
    """Every forecast, or the first failure as a sentence naming its kind, the forecast and the cause."""
    forecasts: list[np.ndarray] = []
    with tempfile.TemporaryFile() as stderr:
        argv = [sys.executable, CANDIDATE_FILE, "predict"]
        with started(
            argv,
            cwd=workspace,
            limits=limits,
            access=access,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as running:
            try:
                for answer in _answers(running.process, requests):
                    forecast, problem = _parsed(answer, shape, f"forecast {len(forecasts) + 1} of {total}")
                    if problem is not None:
                        return forecasts, problem
                    forecasts.append(forecast)
                return forecasts, None
            except _Stopped:
                if running.violation == "wall":
                    return (
                        forecasts,
                        f"timed out: {len(forecasts)} of {total} forecasts within {limits.wall_seconds:g} s",
                    )
                progress = f"after {len(forecasts)} of {total} forecasts"
                return forecasts, _why_stopped(running, progress, stderr, limits)
            finally:
                _close(running)


def _constant(forecasts: list[np.ndarray]) -> str | None:
    """A forecast that is the same at every origin ignores the history it is given: not a forecast."""
    if len(forecasts) > 1 and np.ptp(np.stack(forecasts), axis=0).max() == 0:
        return f"constant: all {len(forecasts)} forecasts are identical, whatever the history"
    return None


class _Stopped(Exception):
    """The candidate closed its output or stopped reading before answering every request."""


def _answers(process: subprocess.Popen[bytes], requests: Iterator[bytes]) -> Iterator[bytes]:
    assert process.stdin is not None and process.stdout is not None
    for request in requests:
        try:
            process.stdin.write(request)
            process.stdin.flush()
        except OSError:
            raise _Stopped from None
        answer = process.stdout.readline(_MAX_ANSWER_BYTES)
        if not answer:
            raise _Stopped
        yield answer


def _parsed(answer: bytes, shape: tuple[int, int], which: str) -> tuple[np.ndarray, str | None]:
    """The forecast, or the problem with it (naming `which` forecast it was).

    Whatever the candidate wrote is checked before anything is built from it: any exception while
    parsing is `malformed` (a nesting too deep for the parser included), the structure must be a list
    of `shape[0]` lists of `shape[1]` numbers, and a number beyond `_MAX_MAGNITUDE` is refused.
    """
    if not answer.endswith(b"\n"):
        return np.empty(0), f"malformed: {which} is longer than {_MAX_ANSWER_BYTES} bytes"
    expected = '{"forecast": [[value per sensor] per horizon]}'
    try:
        parsed = json.loads(answer, parse_constant=_constant_number)
    except Exception as err:  # noqa: BLE001 - whatever the parser raises, the answer is malformed
        cause = f"{type(err).__name__}: {str(err)[:200]}"
        return np.empty(0), f"malformed: {which} ({cause}); expected {expected}"
    if not isinstance(parsed, dict) or "forecast" not in parsed:
        return np.empty(0), f"malformed: {which} is not an object with a forecast; expected {expected}"
    rows = parsed["forecast"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return np.empty(0), f"malformed: {which}'s forecast is not a list of lists; expected {expected}"
    found = (len(rows), *sorted({len(row) for row in rows}))
    if len(found) > 2:
        lengths = f"rows of lengths {found[1:]}"
        return np.empty(0), f"wrong shape: {which} has {lengths}; expected {shape} (horizons, sensors)"
    if (found if len(found) == 2 else (found[0], 0)) != shape:
        return np.empty(0), f"wrong shape: {which} is {found}; expected {shape} (horizons, sensors)"
    values = [value for row in rows for value in row]
    if not all(value is None or _number(value) for value in values):
        return np.empty(0), f"malformed: {which} holds values that are not numbers; expected {expected}"
    if any(isinstance(value, int) and abs(value) > _MAX_MAGNITUDE for value in values):
        return np.empty(0), f"malformed: {which} holds a number beyond {_MAX_MAGNITUDE:g}"
    forecast = np.array([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=float)
    if not np.isfinite(forecast).all():
        return forecast, f"not finite: {which} holds NaN, infinite or null values"
    if np.abs(forecast).max(initial=0.0) > _MAX_MAGNITUDE:
        return forecast, f"malformed: {which} holds a number beyond {_MAX_MAGNITUDE:g}"
    return forecast, None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _constant_number(name: str) -> float:
    """NaN, Infinity and -Infinity, which Python's json accepts: parsed, then refused as not finite."""
    return float(name.lower().replace("infinity", "inf"))


def _why_stopped(running: Running, progress: str, stderr: IO[bytes], limits: Limits) -> str:
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(_EXIT_GRACE_SECONDS)
    code = running.process.returncode
    errors = tail(stderr, _STDERR_CHARS).strip()
    if code is None:
        status = "stopped early: candidate closed its output"
    elif code == 0:
        status = "stopped early: candidate exited with code 0"
    else:
        status = f"crashed: candidate {describe(code, running.violation, errors, limits)}"
    return f"{status} {progress}; stderr: {errors or '(empty)'}"


def _close(running: Running) -> None:
    """Close the candidate's input and give it a moment to exit; `started` kills whatever is left."""
    assert running.process.stdin is not None
    with contextlib.suppress(OSError):
        running.process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(_EXIT_GRACE_SECONDS)
