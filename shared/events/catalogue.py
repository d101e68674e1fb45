"""The typed payload of every event type, grouped by the part of a campaign that emits it.

A class name is its wire type in kebab case (`RunFinished` is `run-finished`). Bump `VERSION` when a
payload changes incompatibly; older consumers then store the event and pass over it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from shared.events.envelope import Payload

__all__ = [
    "AgentTurn",
    "BaselineEvaluated",
    "BudgetExhausted",
    "BudgetLimits",
    "CampaignFinished",
    "CampaignPaused",
    "CampaignResumed",
    "CampaignStarted",
    "CampaignStopRequested",
    "Direction",
    "EventRejected",
    "ExplorationFinished",
    "HarnessAccepted",
    "HarnessBuilt",
    "HarnessRejected",
    "HarnessReviewed",
    "HarnessTested",
    "HintGiven",
    "InterventionIssued",
    "Lesson",
    "LlmCallFinished",
    "LlmPlan",
    "ModelChoice",
    "Price",
    "PhaseFinished",
    "PhaseStarted",
    "PlaybookRevised",
    "ProposalCancelled",
    "ProposalCreated",
    "ProposalSubmitted",
    "RunAnalyzed",
    "RunFailed",
    "RunFinished",
    "RunResources",
    "RunStarted",
    "StallDetected",
    "SubmissionRefused",
]

Direction = Literal["minimize", "maximize"]
Phase = Literal["adapter", "explore", "harness", "experiment", "report"]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- campaign and phases ---------------------------------------------------------------------


class BudgetLimits(_Part):
    """What a campaign may spend; None means no limit of that kind."""

    max_experiments: int | None = Field(default=None, ge=1)
    max_wall_seconds: Amount | None = None
    max_usd: Amount | None = None
    patience: int | None = Field(
        default=None, ge=1, description="stop after this many runs without a new best"
    )


class ModelChoice(_Part):
    """The model one role uses. The API key is named, never held: `api_key_env` is the variable the
    calling process reads it from (default: the provider's standard one)."""

    provider: Literal["anthropic", "openai", "openai-compatible"]
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(KEY|TOKEN|SECRET|PASSWORD)$",
        description="ends in KEY, TOKEN, SECRET or PASSWORD, so the lab keeps it out of other processes",
    )
    max_output_tokens: int = Field(default=8192, ge=16)
    context_tokens: int = Field(default=200_000, ge=1024)
    thinking_tokens: int | None = Field(default=None, ge=1024, description="extended thinking budget")

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"


class Price(_Part):
    """USD per million tokens."""

    input: Amount
    output: Amount
    cached_input: Amount | None = None  # default: input
    cache_write: Amount | None = None  # default: input


class LlmPlan(_Part):
    """The LLM brain's models, per role, and the prices its spend is counted at (by `label`)."""

    roles: dict[str, ModelChoice]
    prices: dict[str, Price] = {}


class CampaignStarted(Payload):
    domain: str = Field(min_length=1, description="a built-in domain's name or an adapter folder's path")
    data: str | None = Field(default=None, description="the user's own data file, if not the domain's own")
    adapter_digest: str | None = Field(
        default=None, description="the adapter folder as a blob (shared.inputs): what every service runs"
    )
    data_digest: str | None = Field(default=None, description="the data file as a blob (shared.inputs)")
    objective: str
    metric: str = Field(min_length=1)
    direction: Direction
    secondary_metrics: tuple[str, ...] = Field(default=(), description="shown beside the metric")
    budget: BudgetLimits = BudgetLimits()
    brain: Literal["builtin", "llm"] = "builtin"
    unsafe_no_sandbox: bool = Field(
        default=False,
        description="start even where the sandbox is missing or the harness lets a hack through",
    )
    deterministic: bool = Field(
        default=False, description="the domain's results do not depend on the seed: one run settles a config"
    )
    llm: LlmPlan | None = Field(default=None, description="the models of the llm brain")


class PhaseStarted(Payload):
    phase: Phase


class PhaseFinished(Payload):
    phase: Phase
    outcome: str = ""


class BudgetExhausted(Payload):
    budget: Literal["experiments", "wall_seconds", "usd"]
    used: Amount
    limit: Amount


class CampaignFinished(Payload):
    reason: str
    best_run_id: Id | None = None


# --- exploration and harness -----------------------------------------------------------------


class ExplorationFinished(Payload):
    """The data report (markdown) and plots (PNG, by file name) are blobs; findings are one-liners."""

    report_digest: Digest | None = None
    plots: dict[str, Digest] = {}
    findings: tuple[str, ...] = ()


class HarnessBuilt(Payload):
    harness_digest: Digest


class HarnessReviewed(Payload):
    """Phase 2, step 1: the harness read before it is run (files present, kept apart from the candidate)."""

    harness_digest: Digest
    verdict: Literal["pass", "fail"]
    findings: tuple[str, ...] = ()


class HarnessTested(Payload):
    """Phase 2, step 2: the known hacks and the baselines graded by the harness under the sandbox.

    `outcomes` says, per hack, what stopped it (or that nothing did); `failed` names the hacks that got
    through and the baselines the harness could not grade.
    """

    harness_digest: Digest
    passed: int = Field(ge=0)
    failed: tuple[str, ...] = ()
    outcomes: dict[str, str] = {}


class HarnessAccepted(Payload):
    """The harness is frozen by digest: every run of the campaign is graded by exactly these files."""

    harness_digest: Digest


class HarnessRejected(Payload):
    """The campaign must not start: the harness let a known hack through, or could not grade."""

    harness_digest: Digest
    reasons: tuple[str, ...] = Field(min_length=1)


class BaselineEvaluated(Payload):
    """A reference method graded by the harness; it gets its own leaderboard row."""

    name: str = Field(min_length=1)
    value: Finite
    metrics: dict[str, Finite] = {}


# --- proposals and runs ----------------------------------------------------------------------


class RunResources(_Part):
    """What a run needs besides a CPU (a domain's `[resources]`): no GPUs is a CPU run, which a worker
    never gives a GPU; a GPU run goes only to a worker with `gpus` devices that each have
    `gpu_memory_mb` free (unset: a whole device each)."""

    gpus: int = Field(default=0, ge=0, le=16, strict=True)
    gpu_memory_mb: int | None = Field(default=None, ge=1, strict=True, description="on each of its GPUs")

    @model_validator(mode="after")
    def _memory_of_a_gpu(self) -> RunResources:
        if self.gpu_memory_mb is not None and self.gpus == 0:
            raise ValueError("gpu_memory_mb is the memory of each GPU of a run: it needs gpus >= 1")
        return self


class ProposalCreated(Payload):
    """An experiment to run; proposals with equal `config` and code are replicates, told apart by `seed`.

    Without `change` and `parent_digest` it runs the adapter's own candidate. With `parent_digest` it
    runs that candidate bundle; with `change` too, a worker first changes that code (or the adapter's
    own) as described.
    """

    proposal_id: Id
    config: dict[str, JsonValue]
    seed: int = 0
    rationale: str = ""
    replaces: Id | None = Field(default=None, description="the proposal this one re-queues, if any")
    hypothesis: str = ""
    change: str = Field(default="", description="a code change for a worker to implement")
    parent_digest: Digest | None = Field(default=None, description="the candidate bundle to start from")
    answers: str | None = Field(
        default=None, max_length=256, description="the operator's submission or hint this proposal follows"
    )
    resources: RunResources | None = Field(
        default=None,
        description="what its run needs; None: what its domain's manifest says (a CPU run without "
        "[resources], as every proposal was before there was this field)",
    )


class ProposalCancelled(Payload):
    proposal_id: Id
    reason: str
    by: str = Field(default="", max_length=128, description="the operator who cancelled it (empty: the lab)")


class RunStarted(Payload):
    run_id: Id
    proposal_id: Id
    worker: str
    attempt: int = Field(default=1, ge=1)


class RunFinished(Payload):
    """A run the harness graded: `value` is the primary metric it computed, never the candidate's.

    `code_digest` is the bundle of the candidate files graded (a blob), `parent_digest` the bundle
    it was changed from, if any. `log_tail` is the end of the run's log (what the candidate's fit
    printed, or the harness's stderr), as a failed run's.
    """

    run_id: Id
    proposal_id: Id
    value: Finite
    metrics: dict[str, Finite] = {}
    log_tail: str = ""
    wall_seconds: Amount = 0.0
    code_digest: Digest | None = None
    parent_digest: Digest | None = None


class RunFailed(Payload):
    run_id: Id
    proposal_id: Id
    error: str
    log_tail: str = ""
    wall_seconds: Amount = 0.0
    code_digest: Digest | None = None
    parent_digest: Digest | None = None


class RunAnalyzed(Payload):
    """The verdict is the judge's, from graded values; `debrief` is an LLM worker's reading of the run."""

    run_id: Id
    proposal_id: Id
    verdict: Literal["improved", "unchanged", "worse", "invalid"]
    summary: str = ""
    debrief: str = ""


class Lesson(_Part):
    """One playbook entry and the runs whose results support it."""

    text: str = Field(min_length=1)
    run_ids: tuple[Id, ...] = ()


class PlaybookRevised(Payload):
    """The whole playbook as of this revision; earlier revisions stay in the log."""

    revision: int = Field(ge=1)
    lessons: tuple[Lesson, ...]
    reason: str = ""


# --- supervision -----------------------------------------------------------------------------


class StallDetected(Payload):
    kind: Literal[
        "silent_service", "stuck_service", "run_overtime", "error_rate", "no_progress", "budget_burn"
    ]
    subject: str
    detail: str = ""


class InterventionIssued(Payload):
    action: Literal["requeue", "cancel", "stop", "patch_adapter"]
    target: str
    reason: str


# --- operators (the dashboard and the CLI; see shared/actions.py) ------------------------------


class CampaignPaused(Payload):
    """An operator paused the campaign: no proposal is made and no run starts until it is resumed.
    Runs already going finish; a stop, or a budget spent, still ends it."""

    by: str = Field(min_length=1, max_length=128, description="who paused it")
    reason: str = ""


class CampaignResumed(Payload):
    by: str = Field(min_length=1, max_length=128)


class CampaignStopRequested(Payload):
    """An operator asked the campaign to end now: the Strategist finishes it, saying who and why."""

    by: str = Field(min_length=1, max_length=128)
    reason: str = ""


class HintGiven(Payload):
    """An operator's hint to the Strategist. The LLM brain's Strategist reads the text; the builtin
    brain takes the `name=value` pairs in it (`model=mlp lags=48`) that fit the search space and fixes
    them in its next proposal."""

    by: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=2000)


class ProposalSubmitted(Payload):
    """An operator's own experiment: the Strategist numbers it and proposes it (its `answers` is this
    event's id), to run like any other; or refuses it, saying why."""

    by: str = Field(min_length=1, max_length=128)
    config: dict[str, JsonValue]
    hypothesis: str = Field(default="", max_length=4000)


class SubmissionRefused(Payload):
    """The Strategist's answer to a submission it cannot run (a configuration outside the search space,
    no experiment left in the budget)."""

    submission: str = Field(min_length=1, max_length=256, description="the proposal-submitted event's id")
    reason: str


# --- agents and their cost -------------------------------------------------------------------


class LlmCallFinished(Payload):
    """One model call (retries included). `input_tokens` counts every prompt token, cached ones too."""

    role: str
    provider: str
    model: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    usd: Amount
    seconds: Amount
    agent: str = Field(default="", description="the turn's subject: a run id, or the role's instance")
    retries: int = Field(default=0, ge=0)


class AgentTurn(Payload):
    """One agent turn, ended by `report` or a cap; its transcript (messages, tool calls, results) is
    a blob."""

    role: str
    turn: int = Field(ge=1)
    summary: str = ""
    transcript_digest: Digest | None = None
    agent: str = Field(default="", description="the turn's subject: a run id, or the role's instance")
    purpose: str = Field(default="", description="e.g. plan, implement, fix, debrief")
    model: str = ""
    tool_calls: int = Field(default=0, ge=0)
    model_calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    usd: Amount = 0.0
    seconds: Amount = 0.0
    ended: str = Field(default="", description="reported, or the cap that ended it")


# --- dead letters ----------------------------------------------------------------------------


class EventRejected(Payload):
    """A message that failed validation; its full bytes are in the blob store under `sha256`."""

    reason: str
    subject: str
    stream_seq: int | None = None
    size: int = Field(ge=0)
    sha256: Digest
    preview: str = ""
    rejected_by: str
    event_id: str | None = Field(
        default=None, description="the rejected event's id, when it decoded (its handler failed)"
    )
