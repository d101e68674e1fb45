"""One experiment, start to end: workspace, harness prepare, candidate fit (sandboxed), harness grade.

The metric always comes from the adapter's harness in its own process; whatever the candidate prints
is kept only as log tail.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared.domain import Domain
from shared.events import Payload, RunFailed, RunFinished
from shared.sandbox import Limits, Outcome, run_async

__all__ = ["execute"]

HARNESS_SECONDS = 120.0


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
) -> Payload:
    """Run one proposal and return its `run-finished` or `run-failed` payload."""
    budget = domain.manifest.budget
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    for name in domain.candidate_files():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(domain.root / name, workspace / name)
    (workspace / "config.json").write_text(json.dumps({**config, "seed": seed}, indent=2))
    data_args = ["--data", data] if data else []

    def failed(error: str, outcome: Outcome, spent: float) -> RunFailed:
        tail = (outcome.stderr_tail or outcome.stdout_tail)[-2000:]
        return RunFailed(
            run_id=run_id, proposal_id=proposal_id, error=error, log_tail=tail, wall_seconds=spent
        )

    harness = Limits(wall_seconds=HARNESS_SECONDS)
    prepared = await run_async(
        domain.harness_argv("prepare", "--workspace", str(workspace), *data_args),
        cwd=workspace,
        limits=harness,
    )
    if prepared.returncode != 0:
        return failed("harness prepare failed", prepared, 0.0)

    fit = await run_async(
        domain.candidate_argv("fit", "--config", "config.json"),
        cwd=workspace,
        limits=Limits(wall_seconds=budget.run_seconds, memory_mb=budget.run_memory_mb, file_mb=512),
        on_tick=on_tick,
    )
    if fit.timed_out:
        return failed(
            f"candidate fit exceeded {budget.run_seconds:g} s and was killed", fit, fit.wall_seconds
        )
    if fit.returncode != 0:
        return failed(f"candidate fit exited with {fit.returncode}", fit, fit.wall_seconds)

    graded = await run_async(
        domain.harness_argv(
            "grade", "--workspace", str(workspace), "--seconds", f"{budget.run_seconds:g}", *data_args
        ),
        cwd=workspace,
        limits=harness,
        on_tick=on_tick,
    )
    spent = fit.wall_seconds + graded.wall_seconds
    verdict = _verdict(graded)
    if verdict is None:
        return failed(f"harness grade failed (exit {graded.returncode})", graded, spent)
    if not verdict.get("valid") or verdict.get("value") is None:
        return failed("invalid: " + "; ".join(verdict.get("failures") or ["no value"]), fit, spent)
    metrics = {k: float(v) for k, v in (verdict.get("metrics") or {}).items() if v is not None}
    return RunFinished(
        run_id=run_id,
        proposal_id=proposal_id,
        value=float(verdict["value"]),
        metrics=metrics,
        wall_seconds=spent,
    )


def _verdict(outcome: Outcome) -> dict[str, Any] | None:
    """The harness's JSON verdict: the last line of its standard output."""
    if outcome.returncode != 0:
        return None
    lines = [line for line in outcome.stdout_tail.strip().splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
