"""Drive one step of an untrusted candidate (its `predict`, say) in the sandbox, one request at a time.

The harness writes a request, reads exactly one answer line, and only then writes the next, so the
candidate never holds a request it has not been asked yet. Whatever goes wrong is raised as
`StepFailed` whose message starts with its kind:

    crashed       the candidate exited nonzero or was killed for a limit other than time
    stopped early it closed its output or exited 0 before answering every request
    timed out     the wall-clock limit of the whole dialogue was reached
    malformed     an answer is not one JSON value on one line within `max_answer_bytes`, or is deeper
                  than the parser can follow (any parser error, `RecursionError` included)

Checking the *content* of an answer (shape, range, normalisation) is the harness's job; raise
`StepFailed("wrong shape: ...")` or similar from there so reasons keep one form.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from shared.sandbox import Access, Limits, Running, describe, started, tail

__all__ = ["CandidateStep", "StepFailed", "finite_number"]

_EXIT_GRACE_SECONDS = 2.0
_STDERR_CHARS = 1500


class StepFailed(Exception):
    """The candidate's step failed; the message is the reason, starting with its kind."""


class CandidateStep:
    """`python <entry> <command>` in the sandbox: workspace read-only, held-out data masked.

        with CandidateStep(workspace, "predict", seconds=60, memory_mb=2048, hidden=held_out) as step:
            answer = step.ask({"rows": [...]}, which="batch 3 of 12")

    `seconds` bounds the whole dialogue in wall-clock and CPU time. `writable=True` lets the step
    write into its workspace (nothing it writes is graded). `processes` counts threads too.
    `requests` and `unit` only word the reasons: "timed out: 40 of 125 forecasts within 60 s".
    """

    def __init__(
        self,
        workspace: Path,
        command: str = "predict",
        *,
        seconds: float,
        memory_mb: int,
        hidden: tuple[Path, ...] = (),
        entry: str = "candidate.py",
        writable: bool = False,
        processes: int = 128,
        file_mb: int = 64,
        max_answer_bytes: int = 1 << 20,
        arguments: tuple[str, ...] = (),
        requests: int | None = None,
        unit: str = "answers",
    ) -> None:
        self.workspace = Path(workspace)
        self.argv = [sys.executable, entry, command, *arguments]
        self.entry = entry
        self.limits = Limits(
            wall_seconds=seconds,
            cpu_seconds=seconds,
            memory_mb=memory_mb,
            file_mb=file_mb,
            processes=processes,
        )
        self.access = Access(self.workspace, writable=writable, hidden=tuple(hidden))
        self.max_answer_bytes = max_answer_bytes
        self.answered = 0
        self._progress = f"{{}} of {requests} {unit}" if requests is not None else f"{{}} {unit}"
        self._stack = contextlib.ExitStack()
        self._running: Running | None = None
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> CandidateStep:
        if not (self.workspace / self.entry).is_file():
            raise StepFailed(f"crashed: no {self.entry} in the workspace")
        self._stderr = self._stack.enter_context(tempfile.TemporaryFile())
        self._running = self._stack.enter_context(
            started(
                self.argv,
                cwd=self.workspace,
                limits=self.limits,
                access=self.access,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
            )
        )
        self._stack.callback(self._close)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stack.close()

    def ask(self, request: dict[str, Any] | bytes, which: str = "") -> Any:
        """Send one request (a JSON object, or bytes ending in a newline) and return the parsed answer."""
        line = self.exchange(request if isinstance(request, bytes) else _line(request), which)
        try:
            return json.loads(line, parse_constant=_special_number)
        except Exception as err:  # noqa: BLE001 - whatever the parser raises, the answer is malformed
            cause = f"{type(err).__name__}: {str(err)[:200]}"
            raise StepFailed(f"malformed: {_label(which, self.answered - 1)} ({cause})") from None

    def exchange(self, request: bytes, which: str = "") -> bytes:
        """Send raw bytes, return the raw answer line; for protocols that are not JSON."""
        assert self._running is not None, "use CandidateStep as a context manager"
        process = self._running.process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(request)
            process.stdin.flush()
        except OSError:
            raise self._stopped(which) from None
        answer = process.stdout.readline(self.max_answer_bytes)
        if not answer:
            raise self._stopped(which)
        if not answer.endswith(b"\n"):
            raise StepFailed(
                f"malformed: {_label(which, self.answered)} is longer than {self.max_answer_bytes} bytes"
            )
        self.answered += 1
        return answer

    def _stopped(self, which: str) -> StepFailed:
        assert self._running is not None and self._stderr is not None
        done = self._progress.format(self.answered)
        if self._running.violation == "wall":
            return StepFailed(f"timed out: {done} within {self.limits.wall_seconds:g} s")
        progress = f"after {done}"
        process = self._running.process
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_EXIT_GRACE_SECONDS)
        errors = tail(self._stderr, _STDERR_CHARS).strip()
        code = process.returncode
        if code is None:
            status = "stopped early: candidate closed its output"
        elif code == 0:
            status = "stopped early: candidate exited with code 0"
        else:
            status = f"crashed: candidate {describe(code, self._running.violation, errors, self.limits)}"
        return StepFailed(f"{status} {progress}; stderr: {errors or '(empty)'}")

    def _close(self) -> None:
        """Close the candidate's input and give it a moment to exit; `started` kills whatever is left."""
        assert self._running is not None and self._running.process.stdin is not None
        with contextlib.suppress(OSError):
            self._running.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._running.process.wait(_EXIT_GRACE_SECONDS)


def finite_number(value: object, limit: float = 1e15) -> bool:
    """A JSON number (not a bool) within ±`limit`: what a score's arithmetic can safely take."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= limit  # False for NaN too


def _line(request: dict[str, Any]) -> bytes:
    return (json.dumps(request, separators=(",", ":")) + "\n").encode()


def _label(which: str, answered: int) -> str:
    return which or f"answer {answered + 1}"


def _special_number(name: str) -> float:
    """NaN and ±Infinity, which Python's json accepts: parsed, for the harness to refuse as not finite."""
    return float(name.lower().replace("infinity", "inf"))
