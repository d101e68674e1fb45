"""Chaos: break a real campaign while it runs, then check that nothing was lost, doubled or miscounted.

`Chaos` (for `--chaos`) SIGKILLs every service once, each at a moment that hurts. `ChaosMonkey` (for
`alphalab chaos` and tests/chaos) goes further: every service SIGKILLed at its worst moments (mid-run,
mid-exploration, mid-Phase 2) and again at random, the NATS server SIGKILLed and restarted, and a worker
SIGSTOPped past its heartbeat's TTL, so that its run is requeued, then resumed to deliver a late result
that must be fenced. `verify` checks the campaign afterwards from its ledger and its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from alphalab.stack import Stack
from shared.bus import STREAM, Bus
from shared.errors import MalformedEvent
from shared.events import (
    CampaignFinished,
    Event,
    Producer,
    ProposalCreated,
    RunFailed,
    RunFinished,
    RunStarted,
    decode,
)
from shared.heartbeat import HEARTBEAT_TTL_S
from shared.ledger import Ledger
from shared.nats_server import EmbeddedNats
from shared.projections import CampaignView, snapshot
from shared.projections.kanban import TERMINAL
from shared.replay import fold
from shared.settings import Settings

__all__ = ["Chaos", "ChaosMonkey", "verify"]

log = structlog.get_logger(__name__)
_Moment = Callable[[CampaignView], bool]
NATS = "nats-server"


def _running_on(worker: str) -> _Moment:
    return lambda view: any(c.state == "running" and c.worker == worker for c in view.kanban.cards.values())


def _graded(n: int) -> _Moment:
    return lambda view: len(view.leaderboard.history) >= n


def _exploring(view: CampaignView) -> bool:
    return not view.explored


def _testing_harness(view: CampaignView) -> bool:
    return view.explored and view.harness == "pending"


class Chaos:
    """Called on every progress tick; kills each service of its plan once, when its moment comes."""

    PLAN: tuple[tuple[str, _Moment], ...] = (
        ("explorer", _exploring),  # mid-exploration
        ("worker-1", _running_on("worker-1")),  # mid-run: its proposal must be redelivered
        ("strategist", _graded(1)),
        ("ledger", _graded(2)),
        ("supervisor", _graded(3)),
    )

    def __init__(self) -> None:
        self.killed: list[str] = []

    def __call__(self, stack: Stack, view: CampaignView) -> None:
        for name, moment in self.PLAN:
            if name not in self.killed and name in stack.names() and moment(view):
                stack.kill(name)
                self.killed.append(name)


@dataclass
class ChaosMonkey:
    """Kills on a plan of hurtful moments, then at random every few seconds for `seconds` seconds.

    The plan: the explorer mid-exploration and mid-Phase 2; NATS and worker-1 mid-run; worker-2
    SIGSTOPped mid-run for longer than its heartbeat lives, then resumed; the strategist, ledger and
    supervisor as results come in, twice each; NATS again later. It also times each kill's cost: the
    seconds until the campaign's log advanced again with the killed process replaced.
    """

    seconds: float = 120.0
    seed: int = 0
    every: float = 12.0  # mean seconds between random kills
    kills: Counter[str] = field(default_factory=Counter)
    stopped: list[str] = field(default_factory=list)
    costs: dict[str, list[float]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    nats_restarts: int = 0

    PLAN: tuple[tuple[str, _Moment], ...] = (
        ("explorer", _exploring),
        ("explorer", _testing_harness),
        (NATS, _running_on("worker-1")),
        ("worker-1", _running_on("worker-1")),
        ("strategist", _graded(1)),
        ("SIGSTOP worker-2", _running_on("worker-2")),
        ("ledger", _graded(2)),
        ("supervisor", _graded(2)),
        ("worker-1", _graded(3)),
        (NATS, _graded(4)),
        ("strategist", _graded(5)),
        ("ledger", _graded(5)),
        ("supervisor", _graded(6)),
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._started = time.monotonic()
        self._next_random = self._started + self._rng.expovariate(1 / self.every)
        self._done: set[int] = set()
        self._frozen: tuple[str, float] | None = None  # (worker, when to resume it)
        self._recovering: list[tuple[str, float, int, int | None]] = []  # (target, at, position, old pid)

    def __call__(self, stack: Stack, view: CampaignView) -> None:
        now = time.monotonic()
        self.restarts = stack.restarts()
        self.nats_restarts = stack.nats.restarts if stack.nats is not None else 0
        self._time_recoveries(stack, view, now)
        if self._frozen is not None and now >= self._frozen[1]:
            self._signal(stack, self._frozen[0], signal.SIGCONT)
            self._frozen = None
        if view.status == "finished":
            return
        for index, (target, moment) in enumerate(self.PLAN):
            if index not in self._done and moment(view):
                self._done.add(index)
                self._act(stack, view, target)
        if now >= self._next_random and now - self._started < self.seconds:
            self._next_random = now + self._rng.expovariate(1 / self.every)
            self._act(stack, view, self._rng.choice([*stack.names(), NATS]))

    def _act(self, stack: Stack, view: CampaignView, target: str) -> None:
        if target.startswith("SIGSTOP "):
            worker = target.removeprefix("SIGSTOP ")
            if self._frozen is None and self._signal(stack, worker, signal.SIGSTOP):
                self._frozen = (worker, time.monotonic() + HEARTBEAT_TTL_S + 15.0)
                self.stopped.append(worker)
                log.warning("chaos_sigstop", target=worker)
            return
        if target == NATS and stack.nats is not None and stack.nats.running():
            old = None
            stack.nats.kill()  # the stack's tend() restarts it on its port and store
        elif target in stack.names() and (self._frozen is None or self._frozen[0] != target):
            old = stack.pid(target)
            stack.kill(target)
        else:
            return
        self.kills[target] += 1
        self._recovering.append((target, time.monotonic(), view.position, old))
        log.warning("chaos_sigkill", target=target)

    def _time_recoveries(self, stack: Stack, view: CampaignView, now: float) -> None:
        pending = []
        for target, at, position, old in self._recovering:
            back = (
                stack.nats is not None and stack.nats.running()
                if target == NATS
                else (stack.pid(target) not in {None, old})
            )
            if back and (view.position > position or view.status == "finished"):
                self.costs.setdefault(target, []).append(now - at)
            else:
                pending.append((target, at, position, old))
        self._recovering = pending

    def _signal(self, stack: Stack, name: str, signum: signal.Signals) -> bool:
        pid = stack.pid(name)
        if pid is None:
            return False
        os.kill(pid, signum)
        return True

    def release(self, stack: Stack) -> None:
        """Resume a worker still frozen (the campaign ended first)."""
        if self._frozen is not None:
            self._signal(stack, self._frozen[0], signal.SIGCONT)
            self._frozen = None

    def report(self, events: list[Event], view: CampaignView) -> list[str]:
        """The counts of a chaos run, one line each."""
        attempts = Counter(e.payload.proposal_id for e in events if isinstance(e.payload, RunStarted))
        results = sum(isinstance(e.payload, RunFinished | RunFailed) for e in events)
        requeues = sum(1 for e in events if isinstance(e.payload, ProposalCreated) and e.payload.replaces)
        kills = ", ".join(f"{name} x{n}" for name, n in sorted(self.kills.items())) or "none"
        costs = ", ".join(
            f"{name} {sum(c) / len(c):.1f} s (max {max(c):.1f})" for name, c in sorted(self.costs.items())
        )
        return [
            f"kills           {sum(self.kills.values())} ({kills})",
            f"nats restarts   {self.nats_restarts}",
            f"SIGSTOPped      {', '.join(self.stopped) or 'none'}",
            f"restarts        {sum(self.restarts.values())} services",
            f"restart cost    {costs or '-'} (until the log advanced with the process replaced)",
            f"redeliveries    {sum(n - 1 for n in attempts.values())} (attempts after a proposal's first)",
            f"requeues        {requeues}",
            f"fenced results  {results - view.budget.experiments} (recorded, not counted)",
            f"events          {len(events)}",
            f"runs            {sum(attempts.values())}",
        ]


def verify(
    settings: Settings, campaign_id: str, live: dict[str, Any], *, nats_url: str | None = None
) -> tuple[list[str], list[Event]]:
    """The checks a campaign must pass after any chaos, and its events: finished exactly once; every
    proposal terminal; at most one counted result per proposal; the ledger equal to the stream (read
    from `nats_url`, else from the lab's own NATS store), with gapless positions; the replay equal to
    `live`, the snapshot of the projections the live campaign ended with."""
    failures: list[str] = []
    with Ledger(settings.ledger_path, read_only=True) as ledger:
        events = list(ledger.events())
        positions = ledger.positions()
    if positions != list(range(1, len(positions) + 1)):
        failures.append("ledger positions are not gapless from 1")
    if nats_url is None:
        with EmbeddedNats(settings.nats_dir) as server:
            stream_ids = asyncio.run(_stream_ids(server.url))
    else:
        stream_ids = asyncio.run(_stream_ids(nats_url))
    ledger_ids = [e.event_id for e in events]
    if ledger_ids != stream_ids:
        missing, extra = set(stream_ids) - set(ledger_ids), set(ledger_ids) - set(stream_ids)
        failures.append(f"ledger != stream: {len(missing)} missing, {len(extra)} extra or out of order")
    own = [e for e in events if e.campaign_id == campaign_id]
    view = fold(own).campaigns[campaign_id]
    if _json(snapshot(view)) != _json(live):
        failures.append("replay != live projections")
    finished = sum(isinstance(e.payload, CampaignFinished) for e in own)
    if finished != 1:
        failures.append(f"campaign-finished {finished} times")
    unfinished = [c.proposal_id for c in view.kanban.cards.values() if c.state not in TERMINAL]
    if unfinished:
        failures.append(f"proposals not terminal: {', '.join(unfinished)}")
    counted = Counter(g.proposal_id for g in view.leaderboard.history)
    doubled = sorted(pid for pid, n in counted.items() if n > 1)
    if doubled:
        failures.append(f"proposals counted more than once: {', '.join(doubled)}")
    if view.budget.experiments > len(view.kanban.cards):
        counted, proposals = view.budget.experiments, len(view.kanban.cards)
        failures.append(f"{counted} experiments counted for {proposals} proposals")
    return failures, own


def _json(document: dict[str, Any]) -> Any:
    return json.loads(json.dumps(document))


async def _stream_ids(nats_url: str) -> list[str]:
    """The id of every valid event in the stream, in stream order."""
    bus = await Bus.connect(nats_url, Producer(service="cli", instance="chaos"))
    try:
        last = (await bus.js.stream_info(STREAM)).state.last_seq
        ids = []
        for seq in range(1, last + 1):
            msg = await bus.js.get_msg(STREAM, seq)
            with contextlib.suppress(MalformedEvent):  # its event-rejected record is in both
                ids.append(decode(msg.data or b"").event_id)
        return ids
    finally:
        await bus.close()
