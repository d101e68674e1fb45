"""The LLM Worker: a model implements a proposal's code change; the harness grades it as always.

    agent folder ← the parent candidate's files (its bundle, or the adapter's own) + config.json
                   + what the harness `prepare`s for training (so the model can smoke-test)
    implement turn (tools in that folder; every command in the sandbox)
    smoke test: the candidate's fit, sandboxed, with a short wall clock
    bundle the candidate's source files → blob store → code digest
    grade the bundle exactly like any run (a fresh workspace, the harness's own metric)
    on a failed smoke test or grading: a fix turn with the log, at most MAX_FIXES, then grade again

The model never reports the metric: the run's value is the harness's. Its last word on a run is the
debrief, kept beside the judge's verdict.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.worker.execution import failure_of, result_of
from shared import bundles
from shared.agents.board import board_tool
from shared.agents.budget import DEBRIEF_CAPS, IMPLEMENT_CAPS, MAX_FIXES, SMOKE_S
from shared.agents.session import Agent, run_agent_turn
from shared.agents.workspace_tools import workspace_tools
from shared.blobs import BlobMissing
from shared.domain import Domain
from shared.events import ProposalCreated, RunFailed, RunFinished
from shared.grading import CONFIG_FILE, candidate_limits, evaluate, harness_check, run_harness
from shared.llm.port import Text
from shared.periodic import every
from shared.projections import CampaignView
from shared.sandbox import Access, Outcome, run_async, tree

__all__ = ["TICK_S", "CodeRun", "debrief", "debrief_prompt", "implement"]

log = structlog.get_logger(__name__)
TICK_S = 5.0
SOURCE_SUFFIXES = frozenset({".py", ".c", ".cc", ".cpp", ".cu", ".h", ".hpp"})


@dataclass(frozen=True)
class CodeRun:
    """One run of a code proposal: where it works, and what it may spend."""

    agent: Agent
    domain: Domain
    proposal: ProposalCreated
    run_id: str
    data: str | None
    base: Path  # the run's own folder: agent/, candidate/, grade/ live under it
    fetch: Callable[[str], Awaitable[bytes]]  # a bundle by digest (raises BlobMissing)
    store: Callable[[bytes], Awaitable[str]]  # a bundle → its digest
    stop: Callable[[], str | None]  # why no model turn may go on now (a spent budget), or None
    view: Callable[[], CampaignView]  # the campaign now, for read_board
    on_tick: Callable[[], Awaitable[None]]


async def implement(run: CodeRun) -> RunFinished | RunFailed:
    """Implement, smoke-test, grade and fix `run.proposal`; the result of its last grading."""
    proposal, agent_dir = run.proposal, run.base / "agent"
    tree.remove(run.base)
    agent_dir.mkdir(parents=True)
    started = await _start_files(run, agent_dir)
    if isinstance(started, str):
        return _failed(run, started, None)
    start, parent = started
    (agent_dir / CONFIG_FILE).write_text(json.dumps({**proposal.config, "seed": proposal.seed}, indent=2))
    prepared = await _prepare(run, agent_dir)
    if isinstance(prepared, str):
        return _failed(run, prepared, parent)
    async with every(TICK_S, run.on_tick):
        stopped = run.stop()
        if stopped is not None:
            return _failed(run, f"{stopped}: the change was not implemented", parent)
        turn = await _turn(run, agent_dir, "implement", 1, _implement_prompt(run, start))
        if turn.startswith("model error"):
            return _failed(run, f"worker model: {turn}", parent)
        fixes = 0
        while True:
            problem, log_tail = await _smoke(run, agent_dir)
            result = None
            if problem is None:
                digest, candidate = await _bundle(run, agent_dir, start, prepared)
                if isinstance(candidate, str):
                    problem = candidate
                else:
                    verdict = await evaluate(
                        run.domain,
                        run.base / "grade",
                        candidate=candidate,
                        config=dict(proposal.config),
                        seed=proposal.seed,
                        data=run.data,
                        on_tick=run.on_tick,
                    )
                    result = result_of(
                        verdict, run.run_id, proposal.proposal_id, code_digest=digest, parent_digest=parent
                    )
                    if isinstance(result, RunFinished):
                        return result
                    # Only the checks' reasons: the grading's log holds output on the held-out data.
                    problem, log_tail = failure_of(verdict), ""
            if fixes >= MAX_FIXES or run.stop() is not None:
                return result or _failed(run, f"{problem} (after {fixes} fixes)", parent)
            fixes += 1
            log.info("fixing", fix=fixes, problem=problem[:300])
            await _turn(run, agent_dir, "fix", fixes, _fix_prompt(problem, log_tail))


def _failed(run: CodeRun, why: str, parent: str | None) -> RunFailed:
    return RunFailed(run_id=run.run_id, proposal_id=run.proposal.proposal_id, error=why, parent_digest=parent)


async def _start_files(run: CodeRun, agent_dir: Path) -> tuple[list[str], str] | str:
    """The parent's files in the agent folder: their names and the parent's digest (the adapter's
    own candidate is stored as a bundle too, so every changed candidate has a parent to diff against);
    or why there are none."""
    try:
        if run.proposal.parent_digest:
            digest = run.proposal.parent_digest
            bundle = await run.fetch(digest)
        else:
            bundle = bundles.pack(run.domain.root, run.domain.candidate_files())
            digest = await run.store(bundle)
        return bundles.unpack(bundle, agent_dir), digest
    except (BlobMissing, bundles.BundleError) as err:
        return f"parent candidate: {err}"


async def _prepare(run: CodeRun, agent_dir: Path) -> set[str] | str:
    """The harness's training files in the agent folder (their names), or why it could not write them."""
    before = {p.name for p in agent_dir.iterdir()}
    scratch = run.base / "harness"
    scratch.mkdir()
    outcome = await run_harness(run.domain, "prepare", agent_dir, scratch, data=run.data, on_tick=run.on_tick)
    check = harness_check("prepare", outcome)
    return {p.name for p in agent_dir.iterdir()} - before if check.passed else check.reason


async def _smoke(run: CodeRun, agent_dir: Path) -> tuple[str | None, str]:
    """The candidate's fit in the sandbox with a short clock: (why it failed or None, its log tail)."""
    budget = run.domain.manifest.budget
    limits = candidate_limits(budget.model_copy(update={"run_seconds": min(SMOKE_S, budget.run_seconds)}))
    access = Access(agent_dir, writable=True, hidden=run.domain.held_out(run.data))
    argv = run.domain.candidate_argv("fit", "--config", CONFIG_FILE)
    outcome: Outcome = await run_async(argv, cwd=agent_dir, limits=limits, access=access, on_tick=run.on_tick)
    failure = outcome.failure(limits)
    tail = outcome.stderr_tail or outcome.stdout_tail
    return (f"smoke test: candidate fit {failure}" if failure else None), tail


async def _bundle(
    run: CodeRun, agent_dir: Path, start: list[str], prepared: set[str]
) -> tuple[str | None, Path | str]:
    """Pack the candidate's sources (the parent's files and new source files), store them, and unpack
    them into a clean folder to grade: (digest, folder), or (None, why they cannot be a candidate)."""
    names = {name for name in start if (agent_dir / name).is_file()}
    for entry in tree.walk(agent_dir, max_depth=4, named=True):
        name = "/".join(entry.parts)
        source = stat.S_ISREG(entry.stat.st_mode) and Path(name).suffix in SOURCE_SUFFIXES
        if source and "__pycache__" not in entry.parts and name not in prepared:
            names.add(name)
    try:
        bundle = bundles.pack(agent_dir, names)
    except bundles.BundleError as err:
        return None, f"candidate files: {err}"
    digest = await run.store(bundle)
    candidate = run.base / "candidate"
    tree.remove(candidate)
    bundles.unpack(bundle, candidate)
    return digest, candidate


async def _turn(run: CodeRun, agent_dir: Path, purpose: str, number: int, prompt: str) -> str:
    """One worker turn in the agent folder; how it ended."""
    limits = candidate_limits(run.domain.manifest.budget)
    tools = [
        *workspace_tools(
            agent_dir,
            hidden=run.domain.held_out(run.data),
            shell_limits=limits,
            max_shell_seconds=run.domain.manifest.budget.run_seconds,
        ),
        board_tool(run.view, run.domain),
    ]
    turn = await run_agent_turn(
        run.agent,
        key=f"{run.run_id}-{purpose}-{number}",
        number=number,
        purpose=purpose,
        system=system_prompt(run.domain),
        prompt=prompt,
        tools=tools,
        caps=IMPLEMENT_CAPS,
        stop=run.stop,
    )
    return turn.ended


async def debrief(agent: Agent, run_id: str, prompt: str, stop: Callable[[], str | None]) -> str:
    """The model's reading of a graded run (no tools but report): its report, else its last words."""
    turn = await run_agent_turn(
        agent,
        key=f"{run_id}-debrief-1",
        number=1,
        purpose="debrief",
        system="You debrief one experiment of an autonomous research lab for its playbook.",
        prompt=prompt,
        tools=[],
        caps=DEBRIEF_CAPS,
        stop=stop,
    )
    said = [b.text for m in turn.messages if m.role == "assistant" for b in m.content if isinstance(b, Text)]
    return (turn.summary or (said[-1] if said else ""))[:4000]


def system_prompt(domain: Domain) -> str:
    entry = domain.manifest.entry.candidate
    return f"""{domain.prompts["worker"].strip()}

## Domain knowledge
{domain.knowledge.strip()}

## How this lab works
- Your workspace is the candidate's folder: its files, `{CONFIG_FILE}` (this run's configuration) and
  the training data the harness prepared. Every command you run is sandboxed: no network, nothing
  outside the workspace, a clean environment.
- The harness grades the candidate afterwards, in a fresh workspace, on data you never see: only the
  source files you leave here (the candidate's files and any new source files) are graded. Keep the
  entry point `{entry}` and its commands and protocol intact.
- Smoke-test with `python {entry} fit --config {CONFIG_FILE}` before you report. Whatever the
  candidate prints or writes is never its score.
- read_board shows the campaign: the leaderboard, recent failures and their reasons, the budget.
- End your turn with report, saying what you changed."""


def _implement_prompt(run: CodeRun, files: list[str]) -> str:
    p = run.proposal
    parent = f"the changed candidate {p.parent_digest}" if p.parent_digest else "the adapter's candidate"
    return (
        f"Experiment {p.proposal_id} (run {run.run_id}), starting from {parent}.\n"
        f"Hypothesis: {p.hypothesis or p.rationale}\n"
        f"Change to implement: {p.change}\n"
        f"Configuration ({CONFIG_FILE}): {json.dumps({**p.config, 'seed': p.seed})}\n"
        f"Candidate files: {', '.join(files)}\n\n"
        "Implement the change, smoke-test it, then report what you changed."
    )


def _fix_prompt(problem: str, log_tail: str) -> str:
    return (
        f"The candidate failed: {problem}\n\nLog tail:\n{log_tail[-3000:]}\n\n"
        "Find and fix the cause in the candidate's files, smoke-test again, then report the fix."
    )


def debrief_prompt(run_id: str, proposal: ProposalCreated, outcome: str, diff: str) -> str:
    return (
        f"Run {run_id} of experiment {proposal.proposal_id}.\nHypothesis: {proposal.hypothesis}\n"
        f"Change: {proposal.change}\nResult, as the harness graded it: {outcome}\n\n"
        f"Diff against its parent:\n{diff[-6000:] or '(none)'}\n\n"
        "In two to four sentences: what does the result say about the hypothesis, and what should be "
        "tried next? Call report with that text as the summary."
    )
