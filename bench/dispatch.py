"""Dispatch: how fast a queued proposal reaches an idle worker, and how idle workers sit while work waits.

    .venv/bin/python bench/dispatch.py [--workers 2] [--proposals 30] [--burst 20] [--run-seconds 1.0]

Real worker processes (`python -m services.worker`) and an embedded nats-server; the domain is a tiny
adapter written to a temp folder whose candidate sleeps for `--run-seconds`, so what is measured is the
orchestration, not a model.

1. Latency: one proposal at a time, each published only after the previous run was analyzed (so a
   worker is idle): time from `proposal-created` to `run-started` (both stamped on this host's clock).
   Target: well under a second (the reference system's dispatcher polls every 10 s).
2. Idle fraction: `--burst` proposals at once; over the span from the first proposal to the last
   analysis, the share of worker time spent idle while some proposal was still queued.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import throwaway  # noqa: E402  (beside this script)
from nats.aio.msg import Msg  # noqa: E402

from alphalab.stack import Stack  # noqa: E402
from shared.bus import Bus  # noqa: E402
from shared.events import (  # noqa: E402
    CampaignStarted,
    Event,
    ProposalCreated,
    RunAnalyzed,
    RunStarted,
    decode,
    subject_for,
)
from shared.settings import Settings  # noqa: E402
from tests.factories import PRODUCER  # noqa: E402

_MANIFEST = """
name = "sleep"
objective = "orchestration benchmark: the candidate only sleeps"
[metric]
name = "value"
direction = "minimize"
[entry]
candidate = "candidate.py"
harness = "harness.py"
[budget]
run_seconds = 60
"""
_CANDIDATE = "import json, sys, time\ntime.sleep(json.load(open('config.json'))['seconds'])\n"
_HARNESS = (
    'import sys\nif sys.argv[1] == \'grade\':\n    print(\'{"valid": true, "value": 1.0, "metrics": {}}\')\n'
)


def write_adapter(folder: Path) -> Path:
    return throwaway.write_adapter(folder, manifest=_MANIFEST, candidate=_CANDIDATE, harness=_HARNESS)


async def latencies(bus: Bus, live: _Recorder, campaign: str, count: int) -> list[float]:
    seconds = []
    for i in range(count):
        proposal = Event.new(
            ProposalCreated(proposal_id=f"l{i:03d}", config={"seconds": 0.0}),
            campaign_id=campaign,
            producer=PRODUCER,
        )
        await bus.publish(proposal)
        started = await _wait_for(live, campaign, lambda e, p=proposal: _is(e, RunStarted, p))
        await _wait_for(live, campaign, lambda e, p=proposal: _is(e, RunAnalyzed, p))
        seconds.append((started.occurred_at - proposal.occurred_at).total_seconds())
    return seconds


async def idle_fraction(
    bus: Bus, live: _Recorder, campaign: str, count: int, run_seconds: float, workers: int
) -> float:
    burst = [
        Event.new(
            ProposalCreated(proposal_id=f"b{i:03d}", config={"seconds": run_seconds}),
            campaign_id=campaign,
            producer=PRODUCER,
        )
        for i in range(count)
    ]
    await bus.publish_many(burst)
    for proposal in burst:
        await _wait_for(live, campaign, lambda e, p=proposal: _is(e, RunAnalyzed, p))
    events = {e.payload.proposal_id: {} for e in burst}  # type: ignore[attr-defined]
    for event in live.seen:
        if isinstance(event.payload, (RunStarted, RunAnalyzed)) and event.payload.proposal_id in events:
            events[event.payload.proposal_id][type(event.payload)] = event.occurred_at.timestamp()
    begin = burst[0].occurred_at.timestamp()
    end = max(times[RunAnalyzed] for times in events.values())
    starts = sorted(times[RunStarted] for times in events.values())
    busy = [(times[RunStarted], times[RunAnalyzed]) for times in events.values()]
    idle, step, t = 0.0, 0.005, begin
    while t < end:
        queued = sum(1 for s in starts if s > t)
        running = sum(1 for s, e in busy if s <= t < e)
        idle += min(queued, workers - running) * step if queued else 0.0
        t += step
    return idle / (workers * (end - begin))


class _Recorder:
    """Every event of the campaign as it is published (a plain subscription: no acks, no replay)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    async def start(self, bus: Bus, campaign_id: str) -> None:
        async def record(msg: Msg) -> None:
            self.seen.append(decode(msg.data))

        await bus.nc.subscribe(subject_for(campaign_id, "*"), cb=record)


def _is(event: Event, kind: type, proposal: Event) -> bool:
    return isinstance(event.payload, kind) and event.payload.proposal_id == proposal.payload.proposal_id  # type: ignore[attr-defined]


async def _wait_for(live: _Recorder, campaign: str, match, timeout: float = 60.0) -> Event:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((e for e in reversed(live.seen) if match(e)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.002)
    raise TimeoutError("no matching event")


async def measure(url: str, adapter: Path, args: argparse.Namespace) -> tuple[list[float], float]:
    bus = await Bus.connect(url, PRODUCER)
    campaign = "dispatch"
    live = _Recorder()
    await live.start(bus, campaign)
    try:
        start = CampaignStarted(domain=str(adapter), objective="bench", metric="value", direction="minimize")
        await bus.publish(Event.new(start, campaign_id=campaign, producer=PRODUCER))
        await asyncio.sleep(2.0)  # let every worker subscribe
        lat = await latencies(bus, live, campaign, args.proposals)
        idle = await idle_fraction(bus, live, campaign, args.burst, args.run_seconds, args.workers)
        return lat, idle
    finally:
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--proposals", type=int, default=30)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--run-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = write_adapter(Path(tmp) / "sleep")
        with Stack(Settings(home=Path(tmp) / "home")) as stack:
            for n in range(1, args.workers + 1):
                stack.start("worker", f"worker-{n}")
            lat, idle = asyncio.run(measure(stack.nats_url, adapter, args))
    ordered = sorted(lat)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    print(f"dispatch latency proposal-created -> run-started, idle worker, n={len(lat)}:")
    print(
        f"  p50 {1000 * statistics.median(lat):.1f} ms   p99 {1000 * p99:.1f} ms"
        f"   max {1000 * max(lat):.1f} ms"
    )
    print(f"  vs the reference dispatcher's 10 s poll: p50 is {10 / statistics.median(lat):.0f}x shorter")
    print(
        f"idle fraction of {args.workers} workers while proposals were queued "
        f"({args.burst} x {args.run_seconds:g} s runs): {idle:.1%}"
    )


if __name__ == "__main__":
    main()
