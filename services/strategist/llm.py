"""The LLM Strategist: turns of a tool-using model that read the board and propose experiments.

A turn is due at the start, after TRIGGER_RESULTS new results, when a worker is idle with nothing
queued, and every INTERVAL_S. Its tools only collect what the model decides (proposals, cancellations,
a playbook); the service publishes them when the turn ends, numbered then, so a turn never races the
builtin policy's own decisions (replicates of contenders, lost analyses, the end of the campaign),
which the LLM brain keeps: a result counts by the harness and the noise rules whatever the model says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Field, JsonValue

from services.strategist.policy import created, experiment_started
from services.strategist.search import check_config
from shared.agents.board import OPEN, board, board_tool
from shared.agents.loop import Caps
from shared.agents.tools import Arguments, Tool, ToolOutput
from shared.domain import Domain
from shared.events import Lesson, PlaybookRevised, ProposalCancelled
from shared.live import Decision
from shared.projections import CampaignView
from shared.projections.lab import TurnRecord

__all__ = [
    "CAPS",
    "INTERVAL_S",
    "TRIGGER_RESULTS",
    "Plan",
    "due",
    "gave_up",
    "system_prompt",
    "tools",
    "turn_id",
    "turn_prompt",
    "unrecorded_turn",
]

TRIGGER_RESULTS = 3
INTERVAL_S = 300.0
IDLE_RETRY_S = 60.0  # an idle worker triggers a new turn at most this often without new results
MAX_PROPOSALS = 5
EMPTY_TURNS = 2  # turns in a row that proposed nothing while nothing was open: the model is out of ideas
FAILED_TURNS = 3  # turns in a row that ended on a model error: the campaign cannot proceed
CAPS = Caps(max_tool_calls=30, max_model_calls=20, max_tokens=400_000, max_seconds=300.0)
BASE = "base"  # the adapter's own candidate, as a parent
RUN_ID = re.compile(r"\bp\d{3,}-\d+\b")


def strategist_turns(view: CampaignView) -> list[TurnRecord]:
    return [t for t in view.turns if t.turn.role == "strategist"]


def turn_id(campaign_id: str, number: int) -> str:
    """The event id of a Strategist turn's record, and the causation id of its decisions."""
    return f"{campaign_id}-strategist-turn-{number}"


def unrecorded_turn(view: CampaignView) -> int | None:
    """The number of a turn whose decisions are in the log but whose record is not (the strategist
    stopped in between): it must be recorded, not paid for again."""
    number = len(strategist_turns(view)) + 1
    return number if turn_id(view.campaign_id, number) in view.decided_by else None


def due(view: CampaignView, workers: int, now: datetime) -> str | None:
    """Why a Strategist turn should start now, or None."""
    turns = strategist_turns(view)
    if not turns:
        return "the campaign starts"
    last = turns[-1]
    new = view.results - last.results
    if new >= TRIGGER_RESULTS:
        return f"{new} new results"
    since = (now - last.at).total_seconds()
    states = [card.state for card in view.kanban.cards.values()]
    idle = "proposed" not in states and states.count("running") < max(workers, 1)
    if idle and view.proposals_left > 0 and (new > 0 or since >= IDLE_RETRY_S):
        return "a worker is idle and nothing is queued"
    if since >= INTERVAL_S and (view.proposals_left > 0 or new > 0):
        return f"{since:.0f} s since the last turn"
    return None


def gave_up(view: CampaignView) -> str | None:
    """Why the campaign must end because of the Strategist's model, or None."""
    turns = strategist_turns(view)
    failed = turns[-FAILED_TURNS:]
    if len(failed) == FAILED_TURNS and all(t.turn.ended.startswith("model error") for t in failed):
        return f"the strategist's model failed {FAILED_TURNS} turns in a row: {failed[-1].turn.ended}"
    empty = turns[-EMPTY_TURNS:]
    before = turns[-EMPTY_TURNS - 1].proposals if len(turns) > EMPTY_TURNS else 0
    counts = [before, *(t.proposals for t in empty)]
    nothing_open = not any(card.state in OPEN for card in view.kanban.cards.values())
    if len(empty) == EMPTY_TURNS and len(set(counts)) == 1 and nothing_open and view.proposals_left > 0:
        return f"the strategist proposed nothing in {EMPTY_TURNS} turns in a row"
    return None


def system_prompt(domain: Domain) -> str:
    return f"""{domain.prompts["strategist"].strip()}

## Domain knowledge
{domain.knowledge.strip()}

## How this lab works
- Workers run your experiments; the harness grades every run on data no candidate sees. Only the
  harness's values count; a candidate's own printed numbers do not.
- An experiment is a configuration within the search space, optionally with a code change that a
  worker implements starting from a parent candidate: `base` (the adapter's candidate files) or a
  changed candidate from the leaderboard, named by its run id or code digest.
- The lab itself replicates contenders for the best with new seeds before it declares a best; do not
  propose plain replicates.
- Tools: read_board, propose_experiment (one call per experiment), cancel_experiments,
  update_playbook (the whole playbook; every lesson cites the run ids that support it), and report,
  which ends your turn. Propose 2-{MAX_PROPOSALS} experiments per turn, within the budget left."""


def turn_prompt(view: CampaignView, domain: Domain, reason: str, number: int) -> str:
    hints = "".join(f"- {hint.by}: {hint.text}\n" for _, hint in view.hints[-10:])
    heard = f"Hints from the operators (latest last; weigh them):\n{hints}\n" if hints else ""
    return (
        f"Strategist turn {number} ({reason}).\n\n{board(view, domain)}\n\n{heard}"
        "Propose the next experiments, revise the playbook if results taught something, then report."
    )


# --- tools -----------------------------------------------------------------------------------


_TEXT = 4000  # characters of any one text a model writes into an event (events are bounded in size)


class _Propose(Arguments):
    hypothesis: str = Field(min_length=1, max_length=_TEXT, description="what you expect and why")
    config: dict[str, JsonValue] = Field(default_factory=dict, description="the run's configuration")
    change: str = Field(
        default="", max_length=_TEXT, description="a code change for a worker to implement; empty: none"
    )
    parent: str = Field(
        default=BASE, max_length=80, description="'base', or the run id or code digest to change"
    )
    rationale: str = Field(default="", max_length=_TEXT, description="the runs this builds on")


class _Cancel(Arguments):
    proposal_ids: list[str] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=1, max_length=_TEXT)


class _LessonArgs(Arguments):
    text: str = Field(min_length=1, max_length=1000)
    run_ids: list[str] = Field(default_factory=list, max_length=20)


class _Playbook(Arguments):
    """The whole playbook: as lessons, or as markdown (one lesson per line or bullet, citing the run
    ids it names, like the reference's playbook file)."""

    lessons: list[_LessonArgs] = Field(default_factory=list, max_length=40)
    content: str = Field(default="", max_length=40 * 1000, description="markdown, instead of lessons")
    reason: str = Field(default="", max_length=1000)

    def parsed(self) -> list[_LessonArgs]:
        if self.lessons:
            return self.lessons
        lines = (line.strip().lstrip("-*0123456789.) ").strip() for line in self.content.splitlines())
        texts = [line for line in lines if line and not line.startswith("#")][:40]
        return [
            _LessonArgs(text=text[:1000], run_ids=sorted(set(RUN_ID.findall(text)))[:20]) for text in texts
        ]


@dataclass
class Plan:
    """What a turn decided, turned into events when it ends."""

    proposals: list[tuple[_Propose, str | None]] = field(default_factory=list)  # with its parent's digest
    cancels: list[tuple[str, str]] = field(default_factory=list)
    playbook: _Playbook | None = None

    def decisions(self, view: CampaignView) -> list[Decision]:
        """Events for the current `view` (numbers from its cards; what it no longer allows is dropped)."""
        decisions = [
            Decision(f"{pid}-cancelled", ProposalCancelled(proposal_id=pid, reason=f"strategist: {why}"))
            for pid, why in self.cancels
            if pid in view.kanban.cards and view.kanban.cards[pid].state in OPEN
        ]
        first = len(view.kanban.cards) + 1
        allowed = self.proposals[: max(0, view.proposals_left)]
        if allowed:
            decisions += experiment_started(view)
        for index, (proposal, parent) in enumerate(allowed):
            decisions.append(
                created(
                    first + index,
                    dict(proposal.config),
                    proposal.rationale or proposal.hypothesis,
                    hypothesis=proposal.hypothesis,
                    change=proposal.change,
                    parent_digest=parent,
                )
            )
        if self.playbook is not None:
            revision = view.playbook.revision + 1
            lessons = tuple(
                Lesson(text=lesson.text, run_ids=tuple(lesson.run_ids)) for lesson in self.playbook.lessons
            )
            reason = self.playbook.reason or "strategist turn"
            decisions.append(
                Decision(
                    f"playbook-{revision}", PlaybookRevised(revision=revision, lessons=lessons, reason=reason)
                )
            )
        return decisions


def tools(view: Callable[[], CampaignView], domain: Domain, plan: Plan) -> list[Tool]:
    """The Strategist's tools over the live view (`view()` is read at each call)."""
    space = domain.manifest.search_space

    async def propose_experiment(args: _Propose) -> ToolOutput:
        current = view()
        if len(plan.proposals) >= min(MAX_PROPOSALS, current.proposals_left):
            return ToolOutput(
                f"no more proposals this turn (at most {min(MAX_PROPOSALS, current.proposals_left)})",
                is_error=True,
            )
        problem = None if args.change else check_config(space, dict(args.config))
        if problem is not None and problem.startswith("unknown parameter"):
            problem += " (new ones need a code change)"
        parent = _parent_digest(current, args.parent)
        if problem is None and isinstance(parent, _Unknown):
            problem = (
                f"unknown parent {args.parent!r}: use 'base', or a run id or code digest from the leaderboard"
            )
        if problem is not None:
            return ToolOutput(problem, is_error=True)
        plan.proposals.append((args, parent if isinstance(parent, str) else None))
        return ToolOutput(f"queued as experiment {len(plan.proposals)} of this turn")

    async def cancel_experiments(args: _Cancel) -> ToolOutput:
        cards = view().kanban.cards
        unknown = [pid for pid in args.proposal_ids if pid not in cards or cards[pid].state not in OPEN]
        if unknown:
            return ToolOutput(f"not open experiments: {', '.join(unknown)}", is_error=True)
        plan.cancels += [(pid, args.reason) for pid in args.proposal_ids]
        return ToolOutput(f"{len(args.proposal_ids)} to be cancelled")

    async def update_playbook(args: _Playbook) -> ToolOutput:
        lessons = args.parsed()
        if not lessons:
            return ToolOutput(
                "no lessons: give `lessons`, or `content` with one lesson per line", is_error=True
            )
        known = {run_id for row in view().leaderboard.rows.values() for run_id in row.run_ids}
        known |= {run_id for card in view().kanban.cards.values() for run_id in card.run_ids}
        cited = {run_id for lesson in lessons for run_id in lesson.run_ids}
        if cited - known:
            return ToolOutput(f"unknown run ids: {', '.join(sorted(cited - known))}", is_error=True)
        plan.playbook = args.model_copy(update={"lessons": lessons})
        return ToolOutput(f"playbook of {len(lessons)} lessons to be published")

    return [
        board_tool(view, domain),
        Tool(
            "propose_experiment",
            "Queue one experiment (a config, optionally a code change).",
            _Propose,
            propose_experiment,
        ),
        Tool("cancel_experiments", "Cancel open experiments by proposal id.", _Cancel, cancel_experiments),
        Tool("update_playbook", "Replace the playbook; lessons cite run ids.", _Playbook, update_playbook),
    ]


class _Unknown:
    pass


def _parent_digest(view: CampaignView, parent: str) -> str | None | _Unknown:
    """The bundle digest a parent names (None: the adapter's own code), or _Unknown."""
    if parent in ("", BASE):
        return None
    for row in view.leaderboard.rows.values():
        if row.code_digest and (parent == row.code_digest or parent in row.run_ids):
            return row.code_digest
        if not row.code_digest and parent in row.run_ids:
            return None
    return _Unknown()
