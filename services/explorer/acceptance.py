"""Phase 2 with the builtin brain: review the adapter's harness, attack it with the known hacks, and
accept it (frozen by digest) or reject it, naming what got through.

The attacks run against a copy of the adapter folder, so a harness that fails to contain them damages
only the copy. A positive control comes first: the adapter's own candidate must grade valid.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import structlog

from hacks import Hack, assemble, judge, suite
from shared.domain import Budget, Domain, load_domain
from shared.events import (
    CampaignStarted,
    HarnessAccepted,
    HarnessRejected,
    HarnessReviewed,
    HarnessTested,
    Payload,
)
from shared.grading import Check, evaluate
from shared.inputs import Resolved
from shared.sandbox import isolation
from shared.settings import Settings

__all__ = ["ATTACK_SECONDS", "accept", "review"]

ATTACK_SECONDS = 20.0  # a hack's run limit: the sleeper waits this long, honest fits take a few seconds
_ATTACK_DISK_MB = 256
_AT_ONCE = 3
HONEST = "honest-candidate"
log = structlog.get_logger(__name__)


def review(domain: Domain, campaign: CampaignStarted, data: str | None) -> HarnessReviewed:
    """The builtin critic: what can be said of the harness without running it."""
    findings: list[str] = []
    failed = False
    harness = domain.manifest.entry.harness
    if harness in domain.candidate_files():
        findings.append(
            f"fail: the harness {harness} is among the candidate's files, which a candidate changes"
        )
        failed = True
    held_out = domain.held_out(data)
    if held_out:
        findings.append(f"held-out data masked from candidates: {', '.join(str(p) for p in held_out)}")
    else:
        findings.append("note: no held-out data declared; the harness must keep its test split out of reach")
    sandbox = isolation(Settings.load().sandbox)
    findings.append(f"sandbox: {sandbox.mode} ({sandbox.detail})")
    # An incomplete sandbox is a warning: the attacks that follow show whether it holds. None at all fails.
    unconfined = _unconfined(sandbox.mode, campaign)
    for missing in sandbox.missing:
        findings.append(f"{'fail' if unconfined else 'warning'}: sandbox lacks {missing}")
    failed = failed or unconfined
    digest = domain.harness_digest()
    return HarnessReviewed(
        harness_digest=digest, verdict="fail" if failed else "pass", findings=tuple(findings)
    )


async def accept(
    campaign: CampaignStarted, inputs: Resolved, scratch: Path, baselines: set[str]
) -> list[Payload]:
    """The review, the test of the harness and its acceptance or rejection, in that order.

    `baselines` are the names of the baselines the harness graded during exploration.
    """
    domain, data = inputs.domain, inputs.data
    digest = domain.harness_digest()
    reviewed = review(domain, campaign, data)
    if _unconfined(isolation(Settings.load().sandbox).mode, campaign):
        # The hacks are adversarial code: without a sandbox they would run loose on this host (write
        # outside their workspace, fill /tmp, fork, read secrets), so none is run at all.
        why = "no sandbox on this host: no candidate was run (start with --unsafe-no-sandbox to run them)"
        tested = HarnessTested(
            harness_digest=digest, passed=0, failed=("sandbox",), outcomes={"sandbox": why}
        )
        reasons = (*(f for f in reviewed.findings if f.startswith("fail:")), f"sandbox: {why}")
        return [reviewed, tested, HarnessRejected(harness_digest=digest, reasons=reasons)]
    copy = load_domain(str(shutil.copytree(domain.root, scratch / "adapter")))
    budget = copy.manifest.budget.model_copy(
        update={
            "run_seconds": min(copy.manifest.budget.run_seconds, ATTACK_SECONDS),
            "run_disk_mb": min(copy.manifest.budget.run_disk_mb, _ATTACK_DISK_MB),
        }
    )
    outcomes: dict[str, str] = {}
    failed: list[str] = []
    honest = await evaluate(copy, scratch / HONEST, data=data)
    outcomes[HONEST] = f"valid, graded {honest.value:.6g}" if honest.valid else _reasons(honest.failures)
    if honest.valid and (mismatch := _unlike_manifest(domain, honest.metrics)):
        failed.append(f"{HONEST} metrics")
        outcomes[f"{HONEST} metrics"] = mismatch
    for name in sorted({b.name for b in domain.manifest.baselines} - baselines):
        failed.append(f"baseline {name}")
        outcomes[f"baseline {name}"] = "the harness did not grade it"
    if honest.valid:
        stopped = await _attack(copy, scratch, budget, data, outcomes)
        failed += [name for name, ok in stopped.items() if not ok]
    else:
        # Every hack is built on the adapter's own candidate: with that broken, each would fail for the
        # same unrelated reason, and none would say anything about the harness.
        failed.insert(0, HONEST)
        outcomes[HONEST] = f"the adapter's own candidate failed, so no hack was tried: {outcomes[HONEST]}"
        stopped = {}
    tested = HarnessTested(
        harness_digest=digest, passed=sum(stopped.values()), failed=tuple(failed), outcomes=outcomes
    )
    reasons = [f for f in reviewed.findings if f.startswith("fail:")]
    reasons += [f"{name}: {outcomes[name]}" for name in failed]
    if domain.harness_digest() != digest:
        reasons.append("the adapter's files changed while its harness was tested")
    if reasons and not campaign.unsafe_no_sandbox:
        return [reviewed, tested, HarnessRejected(harness_digest=digest, reasons=tuple(reasons))]
    return [reviewed, tested, HarnessAccepted(harness_digest=digest)]


def _unconfined(mode: str, campaign: CampaignStarted) -> bool:
    """No isolation here, and the operator did not accept running candidates without it."""
    return mode == "none" and not campaign.unsafe_no_sandbox


def _unlike_manifest(domain: Domain, metrics: dict[str, float]) -> str | None:
    """What the verdict's metrics lack of the manifest's metric and secondary metrics, or None."""
    wanted = [domain.manifest.metric.name, *domain.manifest.secondary_metrics]
    if absent := [name for name in wanted if name not in metrics]:
        return (
            f"domain.toml names metrics {absent} ([metric].name, secondary_metrics) that the harness's "
            f"grade did not print; it printed {sorted(metrics)}"
        )
    return None


async def _attack(
    copy: Domain, scratch: Path, budget: Budget, data: str | None, outcomes: dict[str, str]
) -> dict[str, bool]:
    """Run every hack (a few at a time) with a listener on loopback that none may reach."""
    reached: list[str] = []

    async def knock(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(str(writer.get_extra_info("peername")))
        writer.close()

    listener = await asyncio.start_server(knock, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    limit = asyncio.Semaphore(_AT_ONCE)
    stopped: dict[str, bool] = {}

    async def attack(hack: Hack) -> None:
        async with limit:
            folder = scratch / "hacks" / hack.name
            candidate = assemble(hack, copy, folder / "candidate", budget, data, port=port)
            verdict = await evaluate(copy, folder / "run", candidate=candidate, data=data, budget=budget)
            stopped[hack.name], outcomes[hack.name] = judge(hack, verdict)
            log.info("hack_tried", hack=hack.name, stopped=stopped[hack.name], how=outcomes[hack.name])

    async with listener:
        await asyncio.gather(*(attack(hack) for hack in suite(copy)))
    if reached:
        stopped["open-network-socket"] = False
        outcomes["open-network-socket"] = f"got through: reached the host's loopback from {reached[0]}"
    return stopped


def _reasons(failures: list[Check]) -> str:
    return "invalid: " + "; ".join(f"{check.name}: {check.reason}" for check in failures)
