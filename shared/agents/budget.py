"""How long an LLM Worker's code run may take: its turns' caps, its smoke tests and its gradings.

Shared by the Worker, which keeps within it, and the Supervisor, which must not take a run that is
still implementing for a hung one (a plain run's bound is twice the domain's `run_seconds`).
"""

from __future__ import annotations

from shared.agents.loop import Caps
from shared.grading import HARNESS_SECONDS

__all__ = ["DEBRIEF_CAPS", "IMPLEMENT_CAPS", "MAX_FIXES", "PREPARE_S", "SMOKE_S", "code_run_seconds"]

MAX_FIXES = 2  # fix turns after a failed smoke test or grading
SMOKE_S = 60.0  # the smoke test's wall clock (less where the domain's run is shorter)
PREPARE_S = HARNESS_SECONDS  # the harness writing the training split into the agent's folder
IMPLEMENT_CAPS = Caps(max_tool_calls=40, max_model_calls=30, max_tokens=600_000, max_seconds=600.0)
DEBRIEF_CAPS = Caps(max_tool_calls=2, max_model_calls=3, max_tokens=60_000, max_seconds=120.0)


def code_run_seconds(run_seconds: float) -> float:
    """The longest a code run can take: the harness's prepare, implement and each fix, each followed
    by a smoke test and a grading (fit and grade, each within `run_seconds`), then the debrief."""
    attempt = IMPLEMENT_CAPS.max_seconds + min(SMOKE_S, run_seconds) + 2 * run_seconds
    return PREPARE_S + (1 + MAX_FIXES) * attempt + DEBRIEF_CAPS.max_seconds
