"""One experiment, start to end, as a run event: the shared grading flow, then its verdict as a payload.

The metric always comes from the adapter's harness in its own process; whatever the candidate prints
is kept only as log tail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared.domain import Domain
from shared.events import Payload, RunFailed, RunFinished
from shared.grading import Verdict, evaluate

__all__ = ["execute", "failure_of", "result_of"]


async def execute(
    domain: Domain,
    *,
    run_id: str,
    proposal_id: str,
    config: dict[str, Any],
    seed: int,
    data: str | None,
    workspace: Path,
    on_tick: Callable[[], Awaitable[None]],
    candidate: Path | None = None,
    code_digest: str | None = None,
    parent_digest: str | None = None,
) -> Payload:
    """Run one proposal in `workspace` (emptied first) and return its `run-finished` or `run-failed`.

    `candidate` is a folder of candidate files (default: the adapter's own), `code_digest` the bundle
    they were unpacked from and `parent_digest` the bundle they were changed from."""
    verdict = await evaluate(
        domain, workspace, candidate=candidate, config=config, seed=seed, data=data, on_tick=on_tick
    )
    return result_of(verdict, run_id, proposal_id, code_digest=code_digest, parent_digest=parent_digest)


def result_of(
    verdict: Verdict,
    run_id: str,
    proposal_id: str,
    *,
    code_digest: str | None = None,
    parent_digest: str | None = None,
) -> RunFinished | RunFailed:
    code = {"code_digest": code_digest, "parent_digest": parent_digest}
    if verdict.valid and verdict.value is not None:
        return RunFinished(
            run_id=run_id,
            proposal_id=proposal_id,
            value=verdict.value,
            metrics=verdict.metrics,
            log_tail=verdict.log_tail,
            wall_seconds=verdict.wall_seconds,
            **code,
        )
    return RunFailed(  # an invalid verdict always holds a failed check: no value fails `metric`
        run_id=run_id,
        proposal_id=proposal_id,
        error=failure_of(verdict),
        log_tail=verdict.log_tail,
        wall_seconds=verdict.wall_seconds,
        **code,
    )


def failure_of(verdict: Verdict) -> str:
    return "; ".join(f"{check.name}: {check.reason}" for check in verdict.failures)
