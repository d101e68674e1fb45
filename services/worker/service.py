"""The Worker process: proposals from the durable consumers that workers share, each run by one worker.

JetStream gives each queued proposal to exactly one worker of a durable; a worker that dies leaves its
message unacked and JetStream redelivers it after `ACK_WAIT_S` (long runs call `in_progress()`
meanwhile). Before running, the worker consults its projection of the stream, so a redelivered
proposal that already finished is not run again, and a cancelled one is not run at all. Its events
have ids derived from the run id, so republishing after a crash is deduplicated.

Resources (services/worker/resources.py): a worker finds its CPUs, memory and GPUs at start and says
so in its heartbeat. What a proposal's run needs is its own `resources`, else its domain's manifest's
`[resources]` (a CPU run without one). Every worker reads the durable `workers` and runs its CPU
proposals, one at a time; a worker with GPUs also reads `gpu-workers`, over the same proposals, and
runs its GPU proposals, packed onto its devices by memory (`admission`), several at once. Each durable
passes over (acks) the other kind's proposals, so each proposal is run by one worker of the right
kind: a CPU-only worker never takes a GPU run, and a GPU run waits on `gpu-workers` for a GPU worker,
however late one joins. Each run is granted its devices (`shared.sandbox.devices`): a GPU run's
processes see `CUDA_VISIBLE_DEVICES=<its indices>` and the GPU device nodes, a CPU run's none.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import cast

import structlog
from nats.js import JetStreamContext

from services.worker import llm, resources
from services.worker.admission import BOUNCES, Admission
from services.worker.execution import execute
from services.worker.resources import Placement, Pool
from shared import bundles
from shared.agents.session import Agent
from shared.blobs import BlobMissing
from shared.bus import Bus, Delivery
from shared.domain import Domain
from shared.errors import ConfigError
from shared.events import Event, Payload, Price, ProposalCreated, RunFailed, RunResources, RunStarted
from shared.heartbeat import Heartbeat
from shared.inputs import Inputs
from shared.live import LiveProjection
from shared.llm import price_for
from shared.periodic import every
from shared.projections import CampaignView
from shared.projections.verdict import judge
from shared.sandbox import devices, tree
from shared.settings import Settings
from shared.snapshots import SnapshotStore

__all__ = ["ACK_WAIT_S", "DURABLE", "GPU_DURABLE", "SUBJECT", "run"]

DURABLE = "workers"
GPU_DURABLE = "gpu-workers"
SUBJECT = "alphalab.events.*.proposal-created"
RUNS_PER_GPU = 4  # at most this many GPU runs per device at once, however little memory they take
ACK_WAIT_S = 30.0
PAUSED_CHECK_S = 1.0
CLOSED = frozenset({"analyzed", "cancelled"})
HAS_RESULT = frozenset({"finished", "failed"})
CPU_RUN = RunResources()
log = structlog.get_logger(__name__)


async def run(bus: Bus, stop: asyncio.Event, settings: Settings) -> None:
    host = await asyncio.to_thread(resources.discover, settings.gpus)
    pool = Pool(host.gpus)
    log.info("worker_resources", **host.describe())
    projection = LiveProjection(bus, snapshots=SnapshotStore(bus))
    await projection.start()
    try:
        async with Heartbeat(bus, resources=lambda: host.describe(pool)) as heartbeat:
            worker = _Worker(bus, projection, heartbeat, settings)
            turned = lambda: heartbeat.turned(projection.stream_seq)  # noqa: E731
            cpu = await bus.subscription(DURABLE, subject=SUBJECT, ack_wait=ACK_WAIT_S)
            async with asyncio.TaskGroup() as loops:
                loops.create_task(bus.consume(cpu, worker.handle_cpu, stop, batch=1, on_turn=turned))
                if host.gpus:
                    gpu = await bus.subscription(GPU_DURABLE, subject=SUBJECT, ack_wait=ACK_WAIT_S)
                    worker.admission = Admission(gpu, pool, worker.need, stop)
                    door = cast(JetStreamContext.PullSubscription, worker.admission)  # consume fetches only
                    for _ in range(max(1, min(host.cpus, RUNS_PER_GPU * len(host.gpus)))):
                        loops.create_task(bus.consume(door, worker.handle_gpu, stop, batch=1, on_turn=turned))
    finally:
        await projection.stop()


@dataclass(frozen=True, slots=True)
class _AdapterOf:
    """A campaign's adapter alone (`Inputs.resolve` then leaves its data file where it is)."""

    domain: str | None
    adapter_digest: str | None
    data: None = None
    data_digest: None = None


class _Worker:
    def __init__(
        self, bus: Bus, projection: LiveProjection, heartbeat: Heartbeat, settings: Settings
    ) -> None:
        self.bus, self.projection, self.heartbeat = bus, projection, heartbeat
        self.workspaces = settings.home / "workspaces"
        self.inputs = Inputs(bus.blobs, settings.inputs_cache)
        self.admission: Admission | None = None

    async def handle_cpu(self, event: Event, delivery: Delivery) -> None:
        """A proposal from `workers`: run it if it is a CPU run, pass over it if not."""
        await self._handle(event, delivery, gpu=False, placement=None)

    async def handle_gpu(self, event: Event, delivery: Delivery) -> None:
        """A proposal from `gpu-workers`, placed on devices by the admission if it is a GPU run."""
        assert self.admission is not None
        placement = self.admission.placed(delivery.stream_seq)
        try:
            await self._handle(event, delivery, gpu=True, placement=placement)
        finally:
            if placement is not None:
                self.admission.release(placement)

    async def need(self, event: Event) -> RunResources | None:
        """What a proposal's run needs (its own `resources`, else its domain's), or None if it is
        closed already. Every worker finds the same for the same proposal: it says which durable's
        workers take it. An adapter that cannot be had makes it a CPU run, which fails saying why."""
        proposal = event.payload
        if not isinstance(proposal, ProposalCreated):
            return None
        await self.projection.settle()
        if self._view(event).kanban.cards[proposal.proposal_id].state in CLOSED:
            return None
        if proposal.resources is not None:
            return proposal.resources
        view = self._view(event)
        try:
            resolved = await self.inputs.resolve(_AdapterOf(view.domain, view.adapter_digest))
        except ConfigError:
            return CPU_RUN
        return RunResources.model_validate(resolved.domain.manifest.resources.model_dump())

    async def _handle(
        self, event: Event, delivery: Delivery, *, gpu: bool, placement: Placement | None
    ) -> None:
        proposal = event.payload
        if not isinstance(proposal, ProposalCreated):
            return
        need = await self.need(event)
        if need is None or (need.gpus > 0) != gpu:
            kind = "closed" if need is None else "gpu" if need.gpus else "cpu"
            log.info("proposal_passed_over", proposal_id=proposal.proposal_id, kind=kind)
            return  # closed, or the other kind's: their durable gives it to one of them
        view = await self._unless_paused(event.campaign_id, delivery)
        card = view.kanban.cards[proposal.proposal_id]
        if card.state in CLOSED or card.state in HAS_RESULT or view.status == "finished":
            if card.state in HAS_RESULT:  # its run ended, but the analysis was lost in a crash
                await self._analyze(event, view, card.run_ids[-1], None, delivery)
            log.info("proposal_skipped", proposal_id=proposal.proposal_id, state=card.state)
            return
        run_id = f"{proposal.proposal_id}-{len(card.run_ids) + 1}"
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            await self._publish(event, f"{run_id}-started", RunStarted(
                run_id=run_id, proposal_id=proposal.proposal_id, worker=self.bus.producer.instance,
                attempt=len(card.run_ids) + 1,
            ))  # fmt: skip
            self.heartbeat.runs.append(run_id)
            try:
                if need.gpus and placement is None:
                    result: Payload = self._unplaced(proposal, run_id, need, delivery)
                else:
                    gpus = placement.devices if placement is not None else ()
                    log.info("run_placed", gpus=gpus)
                    result = await self._run_unless_cancelled(event, view, proposal, run_id, delivery, gpus)
                await self._publish(
                    event, f"{run_id}-{result.TYPE}", result
                )  # kept for audit, counted or not
                await self.projection.settle()
                view = self.projection.lab.campaigns[event.campaign_id]
                counted = view.holds(proposal.proposal_id, run_id)  # not if cancelled or superseded meanwhile
                if counted:
                    await self._analyze(event, view, run_id, result, delivery)
            finally:
                self.heartbeat.runs.remove(run_id)
            log.info("run_done", outcome=result.TYPE, fenced=not counted)

    def _unplaced(
        self, proposal: ProposalCreated, run_id: str, need: RunResources, delivery: Delivery
    ) -> RunFailed:
        """The result of a GPU run that no GPU worker could place in `BOUNCES` deliveries."""
        assert self.admission is not None
        each = f"{need.gpu_memory_mb} MB on each" if need.gpu_memory_mb else "each to itself"
        have = ", ".join(f"GPU {g.index} {g.name} ({g.capacity_mb} MB free)" for g in self.admission.gpus)
        error = (
            f"needs {need.gpus} GPU(s), {each}; no GPU worker took it in {delivery.num_delivered} "
            f"deliveries (at most {BOUNCES}), and {self.bus.producer.instance} has {have or 'no GPU'}"
        )
        return RunFailed(
            run_id=run_id, proposal_id=proposal.proposal_id, error=error, parent_digest=proposal.parent_digest
        )

    async def _unless_paused(self, campaign_id: str, delivery: Delivery) -> CampaignView:
        """The campaign's view once it is not paused (an operator's pause holds the proposal here,
        its message kept in progress, so no other worker takes it meanwhile)."""
        await self.projection.settle()
        view = self.projection.lab.campaigns[campaign_id]
        while view.paused is not None and view.status == "running":
            await self._tick(delivery)
            await asyncio.sleep(PAUSED_CHECK_S)
            await self.projection.settle()
            view = self.projection.lab.campaigns[campaign_id]
        return view

    async def _run_unless_cancelled(
        self,
        event: Event,
        view: CampaignView,
        proposal: ProposalCreated,
        run_id: str,
        delivery: Delivery,
        gpus: tuple[int, ...],
    ) -> Payload:
        """Run the proposal on `gpus` (none: a CPU run); if it is cancelled meanwhile, kill the run and
        report it failed."""
        running = asyncio.create_task(self._granted(gpus, event, view, proposal, run_id, delivery))
        while not running.done():
            await asyncio.wait({running}, timeout=0.5)
            card = self.projection.lab.campaigns[event.campaign_id].kanban.cards[proposal.proposal_id]
            if card.state == "cancelled" and not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return RunFailed(
                    run_id=run_id, proposal_id=proposal.proposal_id, error="cancelled while running"
                )
        return running.result()

    async def _granted(
        self,
        gpus: tuple[int, ...],
        event: Event,
        view: CampaignView,
        proposal: ProposalCreated,
        run_id: str,
        delivery: Delivery,
    ) -> Payload:
        """`_execute` with every sandboxed process of the run granted `gpus` and no other GPU."""
        with devices.granted(gpus):
            return await self._execute(event, view, proposal, run_id, delivery)

    async def _execute(
        self, event: Event, view: CampaignView, proposal: ProposalCreated, run_id: str, delivery: Delivery
    ) -> Payload:
        """The run: a model's code change (LLM brain), a changed candidate's bundle, or the adapter's
        own candidate; each graded by the harness, each result naming the code it graded."""
        failed = lambda why: RunFailed(  # noqa: E731
            run_id=run_id, proposal_id=proposal.proposal_id, error=why, parent_digest=proposal.parent_digest
        )
        try:
            inputs = await self.inputs.resolve(view)
        except ConfigError as err:
            return failed(str(err))
        domain = inputs.domain
        base = self.workspaces / event.campaign_id / run_id
        tick = lambda: self._tick(delivery)  # noqa: E731
        if proposal.change and view.brain == "llm" and view.llm is not None:
            return await llm.implement(
                llm.CodeRun(
                    agent=self._agent(event, view, run_id),
                    domain=domain,
                    proposal=proposal,
                    run_id=run_id,
                    data=inputs.data,
                    base=base,
                    fetch=self.bus.blobs.get,
                    store=self.bus.blobs.put,
                    stop=lambda: self._view(event).turns_stopped,
                    view=lambda: self._view(event),
                    on_tick=tick,
                )
            )
        if proposal.change:
            return failed("a code change needs the llm brain, and this campaign runs the builtin one")
        code = proposal.parent_digest
        candidate = None
        if code is not None:  # a replicate of a changed candidate: its bundle, unchanged
            candidate = base / "candidate"
            tree.remove(candidate)
            try:
                bundles.unpack(await self.bus.blobs.get(code), candidate)
            except (BlobMissing, bundles.BundleError) as err:
                return failed(f"candidate bundle: {err}")
        else:
            code = await self._adapter_bundle(domain)
        return await execute(
            domain,
            run_id=run_id,
            proposal_id=proposal.proposal_id,
            config=dict(proposal.config),
            seed=proposal.seed,
            data=inputs.data,
            workspace=base / "grade",
            on_tick=tick,
            candidate=candidate,
            code_digest=code,
        )

    async def _adapter_bundle(self, domain: Domain) -> str | None:
        """The digest of the adapter's own candidate files, stored; None if they cannot be a bundle
        (binary or oversized files: such an adapter's runs carry no code digest)."""
        try:
            return await self.bus.blobs.put(bundles.pack(domain.root, domain.candidate_files()))
        except bundles.BundleError as err:
            log.warning("adapter_not_bundled", domain=domain.name, error=str(err))
            return None

    def _agent(self, cause: Event, view: CampaignView, run_id: str) -> Agent:
        assert view.llm is not None
        choice = view.llm.roles["worker"]
        price = price_for(choice, view.llm.prices) or Price(input=0.0, output=0.0)
        return Agent(self.bus, view.campaign_id, "worker", run_id, choice, price, cause)

    async def _tick(self, delivery: Delivery) -> None:
        """A long run's sign of life: to JetStream (keep the message) and to the heartbeat (progress)."""
        self.heartbeat.turned()
        await delivery.in_progress()

    async def _analyze(
        self, cause: Event, view: CampaignView, run_id: str, result: Payload | None, delivery: Delivery
    ) -> None:
        """Judge a run against the incumbent best, which ends the proposal's life on the board; a model's
        code change gets its debrief beside the verdict."""
        proposal = cause.payload
        assert isinstance(proposal, ProposalCreated)
        error = result.error if isinstance(result, RunFailed) else None
        analysis = judge(view.leaderboard, run_id, proposal.proposal_id, error)
        if proposal.change and view.llm is not None and result is not None and not view.budget.usd_spent:
            async with every(llm.TICK_S, lambda: self._tick(delivery)):
                words = await self._debrief(cause, view, run_id, proposal, result, analysis.summary)
            analysis = analysis.model_copy(update={"debrief": words})
        await self._publish(cause, f"{run_id}-analyzed", analysis)

    async def _debrief(
        self,
        cause: Event,
        view: CampaignView,
        run_id: str,
        proposal: ProposalCreated,
        result: Payload,
        judged: str,
    ) -> str:
        """The model's reading of its run, with the diff against its parent (empty if it gave none)."""
        code, parent = getattr(result, "code_digest", None), getattr(result, "parent_digest", None)
        diff = ""
        if code is not None and parent is not None:
            with contextlib.suppress(BlobMissing, bundles.BundleError):
                diff = bundles.diff(await self.bus.blobs.get(parent), await self.bus.blobs.get(code))
        prompt = llm.debrief_prompt(run_id, proposal, judged, diff)
        return await llm.debrief(
            self._agent(cause, view, run_id), run_id, prompt, lambda: self._view(cause).turns_stopped
        )

    def _view(self, cause: Event) -> CampaignView:
        return self.projection.lab.campaigns[cause.campaign_id]

    async def _publish(self, cause: Event, key: str, payload: Payload) -> None:
        event = Event.new(
            payload,
            campaign_id=cause.campaign_id,
            producer=self.bus.producer,
            caused_by=cause,
            event_id=f"{cause.campaign_id}-{key}",
        )
        await self.bus.publish(event)
