"""The event envelope, the payload registry and the wire codec."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared.errors import MalformedEvent
from shared.events import (
    MAX_EVENT_BYTES,
    AgentTurn,
    BaselineEvaluated,
    BudgetExhausted,
    CampaignFinished,
    CampaignPaused,
    CampaignResumed,
    CampaignStarted,
    CampaignStopRequested,
    EventRejected,
    ExplorationFinished,
    HarnessAccepted,
    HarnessBuilt,
    HarnessRejected,
    HarnessReviewed,
    HarnessTested,
    HintGiven,
    InterventionIssued,
    Lesson,
    LlmCallFinished,
    Payload,
    PhaseFinished,
    PhaseStarted,
    PlaybookRevised,
    ProposalCancelled,
    ProposalCreated,
    ProposalSubmitted,
    RunAnalyzed,
    RunFailed,
    RunFinished,
    RunStarted,
    StallDetected,
    SubmissionRefused,
    decode,
    encode,
    payload_types,
)
from tests.factories import event

DIGEST = "sha256:" + "ab" * 32

SAMPLES: dict[str, Payload] = {
    "agent-turn": AgentTurn(role="planner", turn=1),
    "baseline-evaluated": BaselineEvaluated(name="last-value", value=10.0, metrics={"rmse": 3.0}),
    "budget-exhausted": BudgetExhausted(budget="usd", used=5.0, limit=5.0),
    "campaign-finished": CampaignFinished(reason="budget", best_run_id="r1"),
    "campaign-paused": CampaignPaused(by="ada", reason="freeing the GPU for an hour"),
    "campaign-resumed": CampaignResumed(by="ada"),
    "campaign-stop-requested": CampaignStopRequested(by="ada", reason="enough"),
    "hint-given": HintGiven(by="ada", text="model=mlp lags=48"),
    "proposal-submitted": ProposalSubmitted(by="ada", config={"model": "mlp"}, hypothesis="deeper is better"),
    "submission-refused": SubmissionRefused(submission="c1-e7", reason="lags: 900 is outside [1, 96]"),
    "campaign-started": CampaignStarted(domain="toy", objective="min x", metric="mae", direction="minimize"),
    "event-rejected": EventRejected(
        reason="bad", subject="alphalab.events.c1.x", size=3, sha256=DIGEST, rejected_by="ledger"
    ),
    "exploration-finished": ExplorationFinished(report_digest=DIGEST, findings=("seasonal",)),
    "harness-accepted": HarnessAccepted(harness_digest=DIGEST),
    "harness-rejected": HarnessRejected(harness_digest=DIGEST, reasons=("hack write-metrics got through",)),
    "harness-built": HarnessBuilt(harness_digest=DIGEST),
    "harness-reviewed": HarnessReviewed(harness_digest=DIGEST, verdict="pass"),
    "harness-tested": HarnessTested(harness_digest=DIGEST, passed=4, failed=("test_leak",)),
    "intervention-issued": InterventionIssued(action="requeue", target="r1", reason="overtime"),
    "llm-call-finished": LlmCallFinished(
        role="planner", provider="p", model="m", input_tokens=10, output_tokens=5, usd=0.01, seconds=1.5
    ),
    "phase-finished": PhaseFinished(phase="explore", outcome="done"),
    "phase-started": PhaseStarted(phase="harness"),
    "playbook-revised": PlaybookRevised(revision=1, lessons=(Lesson(text="lower lr", run_ids=("r1",)),)),
    "proposal-cancelled": ProposalCancelled(proposal_id="p1", reason="duplicate"),
    "proposal-created": ProposalCreated(proposal_id="p1", config={"lr": 0.1, "layers": [1, 2]}, seed=3),
    "run-analyzed": RunAnalyzed(run_id="r1", proposal_id="p1", verdict="improved"),
    "run-failed": RunFailed(run_id="r1", proposal_id="p1", error="oom", wall_seconds=2.0),
    "run-finished": RunFinished(run_id="r1", proposal_id="p1", value=1.5, metrics={"rmse": 2.0}),
    "run-started": RunStarted(run_id="r1", proposal_id="p1", worker="w1"),
    "stall-detected": StallDetected(kind="silent_service", subject="worker"),
}


def _wire(**changes: Any) -> dict[str, Any]:
    """The JSON document of a valid run-finished event, with top-level `changes` applied."""
    doc = json.loads(encode(event(SAMPLES["run-finished"])))
    doc.update(changes)
    return doc


def _payload(**changes: Any) -> dict[str, Any]:
    return {**_wire()["payload"], **changes}


def _bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_samples_cover_every_registered_type() -> None:
    """Every registered payload type has a sample here, so a new type without one fails this suite."""
    assert set(SAMPLES) == set(payload_types())


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_type_is_kebab_case_of_class_name(type_name: str) -> None:
    """Each payload class is registered under the kebab-case form of its class name."""
    cls = payload_types()[type_name]
    assert type_name == cls.TYPE
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", type_name)
    assert "".join(part.capitalize() for part in type_name.split("-")) == cls.__name__
    assert type(SAMPLES[type_name]) is cls


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_every_type_round_trips(type_name: str) -> None:
    """Encoding then decoding an event of each type gives back an equal, recognized event."""
    original = event(SAMPLES[type_name])
    decoded = decode(encode(original))
    assert decoded == original
    assert decoded.recognized
    assert decoded.type == type_name
    assert type(decoded.payload) is type(SAMPLES[type_name])


def test_unknown_type_decodes_as_unrecognized_keeping_fields() -> None:
    """An event of a type this code does not know decodes as unrecognized with its payload fields kept."""
    decoded = decode(_bytes(_wire(type="quantum-leap", payload={"energy": 42, "note": "hi"})))
    assert not decoded.recognized
    assert decoded.type == "quantum-leap"
    assert decoded.payload.model_extra == {"energy": 42, "note": "hi"}


def test_newer_schema_version_decodes_as_unrecognized() -> None:
    """A known type with a schema version newer than this code knows decodes as unrecognized."""
    decoded = decode(_bytes(_wire(schema_version=RunFinished.VERSION + 1)))
    assert not decoded.recognized
    assert decoded.type == "run-finished"
    assert decoded.payload.model_extra["run_id"] == "r1"


def test_unrecognized_event_round_trips() -> None:
    """An unrecognized event re-encodes to bytes that decode to an equal event."""
    decoded = decode(_bytes(_wire(type="quantum-leap", payload={"energy": 42})))
    assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize(
    ("data", "names"),
    [
        pytest.param(b"{not json", ("json_invalid",), id="invalid-json"),
        pytest.param(b"[1, 2]", ("object",), id="json-array"),
        pytest.param(_bytes(_wire(payload=_payload(value="x"))), ("payload.value",), id="wrong-payload-type"),
        pytest.param(
            _bytes({k: v for k, v in _wire().items() if k != "producer"}),
            ("producer", "missing"),
            id="missing-field",
        ),
        pytest.param(_bytes(_wire(colour="red")), ("colour", "extra"), id="extra-envelope-field"),
        pytest.param(
            _bytes(_wire(payload=_payload(colour="red"))),
            ("payload.colour", "extra"),
            id="extra-payload-field",
        ),
        pytest.param(_bytes(_wire(campaign_id="c.1")), ("campaign_id",), id="dotted-campaign"),
        pytest.param(
            _bytes(_wire(payload=_payload(value=float("nan")))), ("payload.value", "finite"), id="nan-metric"
        ),
    ],
)
def test_malformed_input_names_the_field(data: bytes, names: tuple[str, ...]) -> None:
    """Malformed bytes raise MalformedEvent whose message names the offending field or problem."""
    with pytest.raises(MalformedEvent) as raised:
        decode(data)
    for name in names:
        assert name in str(raised.value)


def test_unknown_type_with_bad_envelope_is_malformed() -> None:
    """An unknown type is only tolerated inside a valid envelope; a dotted campaign id is still refused."""
    with pytest.raises(MalformedEvent, match="campaign_id"):
        decode(_bytes(_wire(type="quantum-leap", campaign_id="c.1")))


def test_oversize_message_is_refused() -> None:
    """Bytes longer than MAX_EVENT_BYTES are refused as oversize before parsing."""
    doc = _wire(payload=_payload(run_id="r1"))
    data = _bytes(doc) + b" " * MAX_EVENT_BYTES
    with pytest.raises(MalformedEvent, match="oversize"):
        decode(data)


def test_encode_refuses_oversize_event() -> None:
    """Encoding an event bigger than MAX_EVENT_BYTES raises MalformedEvent naming the limit."""
    big = event(RunFailed(run_id="r1", proposal_id="p1", error="oom", log_tail="x" * MAX_EVENT_BYTES))
    with pytest.raises(MalformedEvent, match=str(MAX_EVENT_BYTES)):
        encode(big)


def test_causation_chain_keeps_root_correlation() -> None:
    """Each caused event points at its parent and carries the root's id as correlation, across generations."""
    root = event(SAMPLES["proposal-created"])
    child = event(SAMPLES["run-started"], caused_by=root)
    grandchild = event(SAMPLES["run-finished"], caused_by=child)
    assert root.causation_id is None and root.correlation_id is None
    assert child.causation_id == root.event_id
    assert child.correlation_id == root.event_id
    assert grandchild.causation_id == child.event_id
    assert grandchild.correlation_id == root.event_id
    assert decode(encode(grandchild)).correlation_id == root.event_id
