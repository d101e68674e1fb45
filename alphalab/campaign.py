"""`alphalab run`, `demo` and `resume`: a whole campaign on one machine, every service its own process.

This module plays the operator: it starts the stack, publishes `campaign-started`, watches the campaign
through a live projection of the stream (tending the processes: crashed ones and stuck ones restarted,
embedded NATS too), and when the Strategist finishes it, stops the agents, lets the ledger catch up, and
shows the final projections, which replaying the ledger gives back exactly.

Everything a campaign is lives in its event log (the NATS store under the lab's home) and the ledger, so
after any interruption - Ctrl-C, or the whole machine losing power - `resume_campaign` starts the stack
again on the same home and watches the same campaign to its end; nothing is run or counted twice.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alphalab.artifacts import blob_file
from alphalab.brain import Brain
from alphalab.progress_plot import progress_png
from alphalab.stack import Stack
from shared.agents.budget import code_run_seconds
from shared.blobs import BlobMissing
from shared.bus import STREAM, Bus
from shared.domain import Budget, builtin_domains, load_domain
from shared.errors import AlphaLabError, ConfigError
from shared.events import (
    BudgetLimits,
    CampaignFinished,
    CampaignStarted,
    Event,
    ExplorationFinished,
    Producer,
    decode,
    subject_for,
)
from shared.heartbeat import alive
from shared.inputs import ship
from shared.live import LiveProjection, fold_stream
from shared.projections import CampaignView, snapshot
from shared.secrets import shown_url
from shared.settings import Settings

__all__ = [
    "CampaignInterrupted",
    "CampaignResult",
    "announce",
    "new_campaign",
    "resume_campaign",
    "run_campaign",
]

AGENTS = ("explorer", "strategist", "supervisor")
_GRACE_S = 180.0  # beyond the campaign's time budget, before the CLI gives up watching
_STUCK_CHECK_S = 5.0


class CampaignInterrupted(AlphaLabError):
    """The operator stopped the CLI (Ctrl-C) before the campaign finished; it can be resumed."""


@dataclass(frozen=True)
class CampaignResult:
    campaign_id: str
    view: CampaignView
    folder: Path
    files: dict[str, Path]
    reason: str  # why the campaign finished, as its `campaign-finished` says


Hook = Callable[[Stack, CampaignView], None]
log = structlog.get_logger(__name__)


def run_campaign(
    settings: Settings,
    domain_ref: str,
    *,
    data: str | None,
    workers: int,
    experiments: int | None,
    console: Console,
    on_tick: Hook | None = None,
    unsafe_no_sandbox: bool = False,
    brain: Brain | None = None,
) -> CampaignResult:
    """Run a campaign on `domain_ref` (a built-in name or an adapter folder) to its end."""
    campaign_id, start = new_campaign(
        domain_ref,
        data=data,
        experiments=experiments,
        brain=brain or Brain(),
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
    return _run(settings, campaign_id, start, workers, console, on_tick)


def new_campaign(
    domain_ref: str,
    *,
    data: str | None,
    experiments: int | None,
    brain: Brain,
    unsafe_no_sandbox: bool = False,
) -> tuple[str, CampaignStarted]:
    """A new campaign's id and its `campaign-started`, from the adapter's manifest and the options."""
    domain = load_domain(domain_ref)
    budget = domain.manifest.budget
    campaign_id = f"{domain.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    start = CampaignStarted(
        domain=domain.name
        if domain.name in builtin_domains() and not Path(domain_ref).exists()
        else str(domain.root),
        data=str(Path(data).resolve()) if data else None,
        objective=domain.manifest.objective,
        metric=domain.manifest.metric.name,
        direction=domain.manifest.metric.direction,
        secondary_metrics=domain.manifest.secondary_metrics,
        budget=BudgetLimits(
            max_experiments=experiments or budget.experiments,
            max_wall_seconds=_wall_seconds(brain, budget, experiments or budget.experiments),
            max_usd=brain.max_usd,
            patience=budget.patience,
        ),
        brain=brain.kind,
        llm=brain.plan,
        unsafe_no_sandbox=unsafe_no_sandbox,
        deterministic=domain.manifest.deterministic,
    )
    return campaign_id, start


async def announce(bus: Bus, campaign_id: str, start: CampaignStarted) -> int:
    """Ship the campaign's adapter and data file to the blob store, then publish its start naming them
    by digest: from here on no service reads the operator's paths (see shared.inputs). Returns the
    stream sequence the start was stored at."""
    shipped = await ship(bus.blobs, load_domain(start.domain), start.data)
    start = start.model_copy(
        update={"adapter_digest": shipped.adapter_digest, "data_digest": shipped.data_digest}
    )
    ack = await bus.publish(
        Event.new(start, campaign_id=campaign_id, producer=bus.producer, event_id=f"{campaign_id}-started")
    )
    return ack.seq


def _wall_seconds(brain: Brain, budget: Budget, experiments: int) -> float:
    """The campaign's clock: the domain's, or for the LLM brain at least what its experiments may take
    (a model's code runs take minutes each; the experiment and dollar budgets are what end it)."""
    if brain.kind == "builtin":
        return budget.campaign_seconds
    return max(budget.campaign_seconds, experiments * code_run_seconds(budget.run_seconds))


def resume_campaign(
    settings: Settings,
    campaign_id: str | None,
    *,
    workers: int,
    console: Console,
    on_tick: Hook | None = None,
) -> CampaignResult:
    """Bring the stack back on `settings.home` and watch `campaign_id` (default: the latest one still
    running) to its end, from where its event log stands."""
    return _run(settings, campaign_id, None, workers, console, on_tick)


def start_on_lab(
    settings: Settings,
    domain_ref: str,
    *,
    data: str | None,
    experiments: int | None,
    console: Console,
    unsafe_no_sandbox: bool = False,
) -> CampaignResult:
    """Start a campaign (builtin brain) on the lab whose services already run at `settings.nats_url`,
    on other hosts or in a cluster, and watch it to its end; nothing is started here. The adapter and
    data travel to the lab as blobs (`announce`), so they need not exist where the services run."""
    assert settings.nats_url, "a lab to start the campaign on"
    campaign_id, start = new_campaign(
        domain_ref, data=data, experiments=experiments, brain=Brain(), unsafe_no_sandbox=unsafe_no_sandbox
    )
    console.print(f"campaign [bold]{campaign_id}[/] - on the lab at NATS {shown_url(settings.nats_url)}")
    folder = settings.home / "campaigns" / campaign_id
    try:
        view, files, reason = asyncio.run(_on_lab(settings.nats_url, campaign_id, start, folder, console))
    except KeyboardInterrupt:
        raise CampaignInterrupted(
            f"stopped watching; campaign {campaign_id} goes on in the lab (see `alphalab dashboard`)"
        ) from None
    return CampaignResult(campaign_id, view, folder, files, reason)


async def _on_lab(
    nats_url: str, campaign_id: str, start: CampaignStarted, folder: Path, console: Console
) -> tuple[CampaignView, dict[str, Path], str]:
    bus = await Bus.connect(nats_url, Producer(service="cli", instance="start"), ensure_stream=False)
    projection = LiveProjection(bus, campaign_id=campaign_id)
    await projection.start()
    try:
        await projection.settle(through=await announce(bus, campaign_id, start))
        await _watch(None, bus, projection, campaign_id, console, None)
        view = projection.lab.campaigns[campaign_id]
        files = await _artifacts(bus, campaign_id, folder) if view.explored else {}
        files |= _write_views(view, folder) | await _agent_files(bus, view, folder)
        return view, files, await _finish_reason(bus, campaign_id)
    finally:
        await projection.stop()
        await bus.close()


def _run(
    settings: Settings,
    campaign_id: str | None,
    start: CampaignStarted | None,
    workers: int,
    console: Console,
    on_tick: Hook | None,
) -> CampaignResult:
    with Stack(settings) as stack:
        if campaign_id is None:
            campaign_id = asyncio.run(_unfinished(stack.nats_url))
        stack.start("ledger")
        for agent in AGENTS:
            stack.start(agent)
        for number in range(1, workers + 1):
            stack.start("worker", f"worker-{number}")
        console.print(f"campaign [bold]{campaign_id}[/] - NATS {stack.nats_url} - logs {stack.logs}")
        folder = settings.home / "campaigns" / campaign_id
        try:
            view, files, reason = asyncio.run(_campaign(stack, campaign_id, start, folder, console, on_tick))
        except KeyboardInterrupt:
            raise CampaignInterrupted(
                f"interrupted; the campaign goes on from its log with "
                f"`alphalab resume {campaign_id} --home {settings.home}`"
            ) from None
    return CampaignResult(campaign_id, view, folder, files, reason)


async def _unfinished(nats_url: str) -> str:
    """The latest campaign in the stream that has not finished."""
    bus = await Bus.connect(nats_url, Producer(service="cli", instance="resume"))
    try:
        lab = await fold_stream(bus)
    finally:
        await bus.close()
    running = [view.campaign_id for view in lab.campaigns.values() if view.status == "running"]
    if not running:
        raise ConfigError("no unfinished campaign in this lab's event log to resume")
    return running[-1]


async def _campaign(
    stack: Stack,
    campaign_id: str,
    start: CampaignStarted | None,
    folder: Path,
    console: Console,
    on_tick: Hook | None,
) -> tuple[CampaignView, dict[str, Path], str]:
    bus = await Bus.connect(stack.nats_url, Producer(service="cli", instance="demo"))
    projection = LiveProjection(bus, campaign_id=campaign_id)
    await projection.start()
    try:
        started = await announce(bus, campaign_id, start) if start is not None else 0
        await projection.settle(through=started)
        if campaign_id not in projection.lab.campaigns:
            raise ConfigError(f"campaign {campaign_id!r} has no events in this lab's event log")
        await _watch(stack, bus, projection, campaign_id, console, on_tick)
        view = projection.lab.campaigns[campaign_id]
        files = await _artifacts(bus, campaign_id, folder) if view.explored else {}
        # Quiesce: agents first, then let the ledger store everything, so the final picture is the
        # one replaying the ledger gives.
        stack.stop_services([name for name in stack.names() if name != "ledger"])
        async with asyncio.timeout(60):
            while not await bus.consumer_caught_up("ledger"):
                stack.tend()
                await asyncio.sleep(0.1)
        await projection.settle()
        view = projection.lab.campaigns[campaign_id]
        files |= _write_views(view, folder) | await _agent_files(bus, view, folder)
        return view, files, await _finish_reason(bus, campaign_id)
    finally:
        await projection.stop()
        await bus.close()


async def _watch(
    stack: Stack | None,
    bus: Bus,
    projection: LiveProjection,
    campaign_id: str,
    console: Console,
    on_tick: Hook | None,
) -> None:
    view = projection.lab.campaigns[campaign_id]
    limits = view.budget.limits
    left = (limits.max_wall_seconds or 0.0) - view.budget.elapsed_seconds
    deadline = time.monotonic() + max(0.0, left) + _GRACE_S
    next_stuck_check = time.monotonic() + _STUCK_CHECK_S
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("exploring", total=limits.max_experiments or 0)
        while True:
            if stack is not None:  # a lab of this machine's, which this process keeps alive
                stack.tend()
            await projection.caught_up()  # also replaces its consumer if a NATS restart lost it
            if stack is not None and time.monotonic() >= next_stuck_check:
                next_stuck_check = time.monotonic() + _STUCK_CHECK_S
                await _restart_stuck(stack, bus)
            view = projection.lab.campaigns[campaign_id]
            if on_tick is not None and stack is not None:
                on_tick(stack, view)
            progress.update(task, completed=view.budget.experiments, description=_status(view))
            if view.status == "finished":
                return
            if time.monotonic() > deadline:
                logs = stack.logs if stack is not None else "the lab's services"
                raise AlphaLabError(f"campaign {campaign_id} did not finish in time; see the logs of {logs}")
            await asyncio.sleep(0.5)


async def _restart_stuck(stack: Stack, bus: Bus) -> None:
    try:
        async with asyncio.timeout(5.0):
            beats = await alive(bus)
    except Exception:  # the bus is away (embedded NATS restarting): look again next time
        return
    stack.restart_stuck(beats, time.time())


def _status(view: CampaignView) -> str:
    spend = f" - LLM ${view.budget.usd:.2f}" if view.budget.llm_calls else ""
    if not view.explored:
        return "exploring the data"
    board = view.leaderboard
    best, base = board.declared(), board.best(baselines=True)
    if best is None:
        return f"experiments - no result yet{spend}"
    spread = f" ± {best.spread:.2g}" if best.n > 1 else ""
    confirmed = "confirmed" if best is board.champion() else "unconfirmed"
    score = f"best {best.mean:.4g}{spread} (n={best.n}, {confirmed})"
    return f"experiments - {score}" + (f" (baseline {base.mean:.4g})" if base else "") + spend


async def _finish_reason(bus: Bus, campaign_id: str) -> str:
    message = await bus.js.get_last_msg(STREAM, subject_for(campaign_id, CampaignFinished.TYPE))
    finished = decode(message.data or b"").payload
    assert isinstance(finished, CampaignFinished)
    return finished.reason


async def _artifacts(bus: Bus, campaign_id: str, folder: Path) -> dict[str, Path]:
    """Fetch the explorer's report and plots from the blob store into the campaign folder."""
    folder.mkdir(parents=True, exist_ok=True)
    message = await bus.js.get_last_msg(STREAM, subject_for(campaign_id, "exploration-finished"))
    exploration = decode(message.data or b"").payload
    assert isinstance(exploration, ExplorationFinished)
    files: dict[str, Path] = {}
    if exploration.report_digest:
        files["report"] = folder / "report.md"
        files["report"].write_bytes(await bus.blobs.get(exploration.report_digest))
    (folder / "plots").mkdir(exist_ok=True)
    for name, digest in exploration.plots.items():
        files[f"plot {name}"] = folder / "plots" / name
        files[f"plot {name}"].write_bytes(await bus.blobs.get(digest))
    return files


async def _agent_files(bus: Bus, view: CampaignView, folder: Path) -> dict[str, Path]:
    """Copy the agents' transcripts and the changed candidates' bundles (and their parents') from the
    blob store into the campaign folder."""
    rows = view.leaderboard.rows.values()
    wanted = {
        "transcripts": {t.turn.transcript_digest for t in view.turns if t.turn.transcript_digest},
        "candidates": {d for row in rows for d in (row.code_digest, row.parent_digest) if d},
    }
    for kind, digests in wanted.items():
        for digest in digests:
            path = blob_file(folder, kind, digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.write_bytes(await bus.blobs.get(digest))
            except BlobMissing:  # the report goes on without it; the event names what was lost
                log.warning("blob_missing", kind=kind, digest=digest)
    return {kind: folder / kind for kind, digests in wanted.items() if digests}


def _write_views(view: CampaignView, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = snapshot(view)
    (folder / "projections.json").write_text(json.dumps(document, indent=2))
    lines = [f"# Playbook of {view.campaign_id} (revision {view.playbook.revision})", ""]
    for number, lesson in enumerate(view.playbook.lessons, start=1):
        cited = ", ".join(lesson.run_ids) or "-"
        lines.append(f"{number}. {lesson.text} (runs: {cited})")
    (folder / "playbook.md").write_text("\n".join(lines) + "\n")
    (folder / "progress.png").write_bytes(progress_png(view))
    return {
        "playbook": folder / "playbook.md",
        "projections": folder / "projections.json",
        "progress plot": folder / "progress.png",
    }
