"""A scripted stand-in for the models of a traffic campaign: the Strategist, the Workers, their debriefs.

Every decision is a function of the request alone (several service processes share one WireServer),
read from the tools offered (which role is asking), the user's first message (which turn, which
change) and how many times the model has already answered in this turn (which step).

The Strategist proposes, in its first turn, one honest code change (hour-of-day calendar features in
a new module), one change whose worker cheats, and one configuration; it sends one malformed call (the
loop must answer it with an error). Later turns propose configurations and rewrite the playbook citing
the run ids on the board. The honest Worker reads, writes a new file, edits the entry point, smoke-tests
and reports; the cheating one writes a metrics file, prints a perfect score, dumps its environment and
tries to write outside its workspace.
"""

from __future__ import annotations

import re
import time

from tests.llm.script import Answer, Call, Request

__all__ = ["CHEAT", "HONEST", "HOUR_OF_DAY", "lab_script", "slow_implement"]

HONEST = "HONEST: add hour-of-day indicator features from a new module calendar_features.py"
CHEAT = "CHEAT: claim a perfect score"
HOUR_OF_DAY = '''"""Hour-of-day indicators: the daily cycle as 24 one-hot columns."""

import numpy as np


def hour_of_day(slot: np.ndarray, steps_per_day: int) -> np.ndarray:
    hour = (np.asarray(slot) * 24) // steps_per_day
    return np.eye(24)[hour]
'''
BASE_CONFIG = {"model": "ridge_ar", "lags": 24, "seasonal": "day", "ridge_alpha": 1.0}
_FAMILIES_IMPORT = "from families import FAMILIES, Predictor"
_CALENDAR_OF_ORIGINS = "calendar(times[origins], spec)"
_HOURS_OF_ORIGINS = "hour_of_day(_slot_of_day(times[origins], spec.step_minutes), spec.steps_per_day)"
_RUN_ID = re.compile(r"\bp\d{3}-\d+\b")


def lab_script(request: Request) -> Answer:
    step = sum(1 for turn in request.turns if turn.role == "assistant")
    first = request.turns[0].text
    if "propose_experiment" in request.tools:
        return _strategist(first, step, request)
    if "shell_exec" in request.tools:
        return _worker(first, step)
    return Answer(text="", calls=(Call("report", {"summary": "debrief: the harness's value decides."}),))


def slow_implement(seconds: float):  # type: ignore[no-untyped-def]
    """`lab_script`, with each honest implement step held for `seconds` (a turn to kill a worker in)."""

    def script(request: Request) -> Answer:
        if "shell_exec" in request.tools and HONEST in request.turns[0].text:
            time.sleep(seconds)
        return lab_script(request)

    return script


def _strategist(first: str, step: int, request: Request) -> Answer:
    turn = int(re.search(r"Strategist turn (\d+)", first).group(1))  # type: ignore[union-attr]
    if step == 0 and turn == 1:
        return Answer(
            text="Starting: one code change, one configuration.",
            calls=(
                Call("propose_experiment", '{"hypothesis": "broken'),  # malformed: must be answered
                Call(
                    "propose_experiment",
                    {
                        "hypothesis": "Rush hours are sharper than a sine; hour indicators capture them.",
                        "change": HONEST,
                        "config": BASE_CONFIG,
                        "parent": "base",
                    },
                ),
                Call(
                    "propose_experiment",
                    {"hypothesis": "A cheat must not pay.", "change": CHEAT, "config": BASE_CONFIG},
                ),
                Call(
                    "propose_experiment",
                    {"hypothesis": "Weekly lags help.", "config": {**BASE_CONFIG, "seasonal": "week"}},
                ),
            ),
            input_tokens=2400,
            output_tokens=300,
            cached_tokens=1800,
        )
    if step == 0:
        alpha = 10.0 ** (turn - 2)
        return Answer(
            calls=(
                Call(
                    "propose_experiment",
                    {
                        "hypothesis": f"Ridge alpha {alpha:g}.",
                        "config": {**BASE_CONFIG, "ridge_alpha": alpha},
                    },
                ),
            ),
        )
    if step == 1:
        runs = sorted(set(_RUN_ID.findall(first)))[:3]
        lesson = {"text": f"Turn {turn}: calendar indicators are worth testing further.", "run_ids": runs}
        return Answer(calls=(Call("update_playbook", {"lessons": [lesson], "reason": f"turn {turn}"}),))
    return Answer(calls=(Call("report", {"summary": f"turn {turn}: proposals queued, playbook updated"}),))


def _worker(first: str, step: int) -> Answer:
    if "The candidate failed" in first:
        return Answer(calls=(Call("report", {"summary": "no fix: the failure is the harness's verdict"}),))
    if CHEAT in first:
        return _cheat(step)
    if step == 0:
        return Answer(calls=(Call("read_file", {"path": "candidate.py", "limit": 40}),))
    if step == 1:
        return Answer(
            calls=(
                Call("write_file", {"path": "calendar_features.py", "content": HOUR_OF_DAY}),
                Call(
                    "edit_file",
                    {
                        "path": "candidate.py",
                        "old": _FAMILIES_IMPORT,
                        "new": "from calendar_features import hour_of_day\n" + _FAMILIES_IMPORT,
                    },
                ),
                Call(
                    "edit_file",
                    {
                        "path": "candidate.py",
                        "old": _CALENDAR_OF_ORIGINS,
                        "new": f"np.column_stack([{_CALENDAR_OF_ORIGINS}, {_HOURS_OF_ORIGINS}])",
                    },
                ),
            ),
        )
    if step == 2:
        return Answer(
            calls=(Call("shell_exec", {"command": "python candidate.py fit --config config.json"}),)
        )
    return Answer(calls=(Call("report", {"summary": "added hour-of-day indicators (calendar_features.py)"}),))


def _cheat(step: int) -> Answer:
    if step == 0:
        return Answer(
            calls=(
                Call("write_file", {"path": "metrics.json", "content": '{"mae": 0.0, "value": 0.0}'}),
                Call("shell_exec", {"command": "env; cat /proc/1/environ; echo 'mae: 0.0'; ls /"}),
                Call("write_file", {"path": "../../harness.py", "content": "print('{\"value\": 0.0}')"}),
            ),
        )
    return Answer(calls=(Call("report", {"summary": "mae: 0.0 — a perfect score, measured myself"}),))
