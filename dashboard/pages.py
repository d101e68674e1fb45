"""The JSON the page renders, built from the projections: pure functions of a moment, bounded in size.

A campaign of 10,000 experiments must not send 10,000 cards on every update: a kanban column carries
its count and only its latest cards, the leaderboard its top rows and every baseline. The progress
series is the exception, one value per graded run, since the plot needs them all; a live page gets
only the values it does not have yet.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from html import escape
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from dashboard.cards import Detail
from dashboard.chronicle import Story
from dashboard.timeline import Moment
from shared.events import Event
from shared.projections import CampaignView
from shared.projections.kanban import Card
from shared.projections.leaderboard import Leaderboard, Row

__all__ = [
    "CARDS_PER_COLUMN",
    "COLUMNS",
    "ROWS",
    "campaign_page",
    "campaigns",
    "card",
    "code_view",
    "headline",
    "playbook_history",
]

COLUMNS = ("proposed", "running", "finished", "failed", "analyzed", "cancelled", "dead")
CARDS_PER_COLUMN = 50
ROWS = 40
SPEND_POINTS = 500
_HEADLINE_CHARS = 200
HIGHLIGHT_CHARS = 200_000  # a larger text is shown escaped but not lexed: lexing it would take seconds
_HTML = HtmlFormatter(nowrap=True)  # spans of Pygments' short class names (k, nf, s2, ...), no wrapper
_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_SIDES = {"del": ("old",), "add": ("new",), "same": ("old", "new")}  # the diff's lines, by side


def campaigns(moment: Moment) -> list[dict[str, Any]]:
    """Every campaign in the lab, newest first, with what a list of them needs."""
    rows = []
    for view in reversed(list(moment.lab.campaigns.values())):
        board = view.leaderboard
        best, base = board.declared(), board.best(baselines=True)
        rows.append(
            {
                "campaign_id": view.campaign_id,
                "status": view.status,
                "domain": view.domain,
                "brain": view.brain,
                "metric": board.metric,
                "direction": board.direction,
                "best": _brief(best),
                "best_baseline": _brief(base),
                "improvement": board.improvement(best, base) if best and base else None,
                "experiments": view.budget.experiments,
                "usd": view.budget.usd,
                "compute_seconds": view.budget.compute_seconds,
                "events": view.position,
            }
        )
    return rows


def campaign_page(moment: Moment, campaign_id: str, plotted: int = 0) -> dict[str, Any] | None:
    """Everything the campaign page shows as of `moment`, or None if the campaign had no event by then.

    `plotted`: how many values of the progress series the page already has (a live page is sent
    only the new ones)."""
    view = moment.lab.campaigns.get(campaign_id)
    if view is None:
        return None
    details = moment.details.campaigns.get(campaign_id, {})
    board = view.leaderboard
    return {
        "campaign_id": campaign_id,
        "position": moment.position,
        "status": view.status,
        "domain": view.domain,
        "brain": view.brain,
        "harness": view.harness,
        "failure": view.failure,
        "paused": view.paused.model_dump(mode="json") if view.paused else None,
        "stop_requested": view.stop_requested.model_dump(mode="json") if view.stop_requested else None,
        "budget": _budget(view),
        "kanban": _kanban(view, details),
        "leaderboard": _leaderboard(board),
        "progress": _progress(board, plotted),
        "timeline": _timeline(moment.chronicle.campaigns.get(campaign_id)),
        "playbook": {
            "revision": view.playbook.revision,
            "lessons": [lesson.model_dump(mode="json") for lesson in view.playbook.lessons],
        },
    }


def card(view: CampaignView, detail: Detail) -> dict[str, Any]:
    """One kanban card in full: the proposal, and every attempt at it."""
    state = view.kanban.cards.get(detail.proposal.proposal_id)
    return _card(state, detail) | {
        "rationale": detail.proposal.rationale,
        "change": detail.proposal.change,
        "attempts": [
            {
                "run_id": a.run_id,
                "worker": a.worker,
                "started_at": a.started_at.isoformat(),
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                "value": a.value,
                "metrics": a.metrics,
                "error": a.error,
                "log_tail": a.log_tail,
                "verdict": a.verdict,
                "summary": a.summary,
                "debrief": a.debrief,
                "code_digest": a.code_digest,
                "parent_digest": a.parent_digest,
            }
            for a in detail.attempts
        ],
        "history": [[t.state, t.event_id, t.at.isoformat()] for t in state.history] if state else [],
    }


def code_view(files: dict[str, str], diff: str) -> dict[str, Any]:
    """A run's files and their diff, as text and as highlighted HTML for the page to show as is.

    Candidate code is untrusted: in the HTML every character of it is escaped (by Pygments, or by
    `escape` for the diff's markers and headers), and the only markup is spans and divs with a class.
    """
    return {
        "files": files,
        "diff": diff,
        "highlighted": {
            name: highlight(text, _lexer(name, len(text)), _HTML) for name, text in files.items()
        },
        "diff_html": "".join(
            line for name, lines in _diff_files(diff) for line in _diff_lines(lines, _lexer(name, len(diff)))
        ),
    }


def _lexer(name: str, size: int) -> Lexer:
    """The lexer Pygments picks by the file's name; plain text for a name it does not know, or a text
    of `size` characters above HIGHLIGHT_CHARS. Lines are kept as they are (a diff maps them back)."""
    if size <= HIGHLIGHT_CHARS:
        with contextlib.suppress(ClassNotFound):
            return get_lexer_for_filename(name, stripnl=False)
    return TextLexer(stripnl=False)


def _diff_files(diff: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """A unified diff by file: its name and its lines, each with its kind (file, hunk, add, del, same,
    note). The hunk headers' counts say which lines are code: a removed line "-- x" reads "--- x"."""
    files: list[tuple[str, list[tuple[str, str]]]] = [("", [])]
    old = new = 0
    for line in diff.splitlines():
        if line.startswith("\\"):  # "\ No newline at end of file": about the line before it
            kind = "note"
        elif old > 0 or new > 0:
            kind = {"-": "del", "+": "add", " ": "same"}.get(line[:1], "note")
            old -= "old" in _SIDES.get(kind, ())
            new -= "new" in _SIDES.get(kind, ())
        elif hunk := _HUNK.match(line):
            kind, old, new = "hunk", int(hunk[1] or 1), int(hunk[2] or 1)
        else:
            kind = "file"
            if line.startswith("--- "):
                files.append((line[4:], []))
            elif line.startswith("+++ ") and line[4:] != "/dev/null":
                files[-1] = (line[4:], files[-1][1])
        files[-1][1].append((kind, line))
    return files


def _diff_lines(lines: list[tuple[str, str]], lexer: Lexer) -> Iterator[str]:
    """One file's part of the diff, a div per line. The old file's lines and the new one's are each
    lexed as one text, so a string opened on one side does not run on into the other."""
    sides = {
        side: iter(
            _highlighted_lines([line[1:] for kind, line in lines if side in _SIDES.get(kind, ())], lexer)
        )
        for side in ("old", "new")
    }
    for kind, line in lines:
        code = [next(sides[side]) for side in _SIDES.get(kind, ())]
        yield f'<div class="{kind}">{escape(line[:1]) + code[-1] if code else escape(line)}</div>'


def _highlighted_lines(lines: list[str], lexer: Lexer) -> list[str]:
    """The lines highlighted as one text, split back into lines (Pygments closes its spans at each)."""
    return highlight("\n".join(lines), lexer, _HTML).split("\n")


def playbook_history(view: CampaignView) -> list[dict[str, Any]]:
    """Every revision of the playbook, newest first, with the lessons it added and dropped."""
    revisions, before = [], set[str]()
    for revision in view.playbook.history:
        texts = [lesson.text for lesson in revision.lessons]
        revisions.append(
            {
                "revision": revision.revision,
                "event_id": revision.event_id,
                "at": revision.at.isoformat(),
                "reason": revision.reason,
                "lessons": [lesson.model_dump(mode="json") for lesson in revision.lessons],
                "added": [text for text in texts if text not in before],
                "dropped": sorted(before - set(texts)),
            }
        )
        before = set(texts)
    return revisions[::-1]


def headline(event: Event, position: int) -> dict[str, Any]:
    """One line of the event log: position, time, type, and the payload's fields in brief."""
    fields = {k: v for k, v in event.payload.model_dump(mode="json").items() if v not in (None, "", [], {})}
    text = json.dumps(fields, separators=(", ", ": "), default=str)
    if len(text) > _HEADLINE_CHARS:
        text = text[: _HEADLINE_CHARS - 1] + "…"
    return {
        "position": position,
        "at": event.occurred_at.isoformat(),
        "type": event.type,
        "producer": event.producer.service,
        "event_id": event.event_id,
        "text": text,
    }


def _kanban(view: CampaignView, details: dict[str, Detail]) -> dict[str, Any]:
    columns = view.kanban.columns()
    return {
        state: {
            "count": len(columns.get(state, [])),
            "cards": [
                _card(view.kanban.cards[pid], details.get(pid))
                for pid in reversed(columns.get(state, [])[-CARDS_PER_COLUMN:])
            ],
        }
        for state in COLUMNS
    }


def _card(state: Card | None, detail: Detail | None) -> dict[str, Any]:
    latest = detail.attempts[-1] if detail and detail.attempts else None
    proposal = detail.proposal if detail else None
    seconds = (latest.ended_at - latest.started_at).total_seconds() if latest and latest.ended_at else None
    return {
        "proposal_id": state.proposal_id if state else (proposal.proposal_id if proposal else None),
        "state": state.state if state else None,
        "hypothesis": (proposal.hypothesis or proposal.rationale) if proposal else "",
        "config": proposal.config if proposal else {},
        "changes_code": bool(proposal and proposal.change),
        "worker": state.worker if state else None,
        "attempts": len(detail.attempts) if detail else 0,
        "seconds": seconds,
        "value": latest.value if latest else None,
        "error": latest.error if latest else None,
        "verdict": latest.verdict if latest else None,
    }


def _leaderboard(board: Leaderboard) -> dict[str, Any]:
    ranked = board.ranked()
    champion, base = board.champion(), board.best(baselines=True)
    shown, configurations = [], 0
    for rank, row in enumerate(ranked, start=1):
        if row.baseline or configurations < ROWS:
            shown.append((rank, row))
            configurations += not row.baseline
    return {
        "metric": board.metric,
        "direction": board.direction,
        "secondary": list(board.secondary),
        "total": len(ranked),
        "rows": [
            {
                "rank": rank,
                "label": row.label,
                "baseline": row.baseline,
                "n": row.n,
                "mean": row.mean,
                "spread": row.spread,
                "best": row.best,
                "champion": row is champion,
                "improvement": None if base is None or row.baseline else board.improvement(row, base),
                "secondary": {name: row.best_metrics.get(name) for name in board.secondary},
                "changes_code": row.code_digest is not None,
            }
            for rank, row in shown
        ],
    }


def _progress(board: Leaderboard, start: int) -> dict[str, Any]:
    """Each graded run's value from the `start`-th on, in the order results came, to 6 significant
    digits (a plot's precision: the leaderboard has the exact values); the page draws the best so far."""
    baseline = board.best(baselines=True)
    return {
        "from": start,
        "values": [float(f"{graded.value:.6g}") for graded in board.history[start:]],
        "baseline": baseline.mean if baseline else None,
    }


def _timeline(story: Story | None) -> dict[str, Any]:
    """The phases and the spend, in seconds since the campaign started (spend thinned to SPEND_POINTS)."""
    if story is None or story.started_at is None:
        return {"phases": [], "spend": []}
    start = story.started_at

    def since(moment: datetime) -> float:
        return round((moment - start).total_seconds(), 2)

    step = max(1, len(story.spend) // SPEND_POINTS)
    thinned = story.spend[::step] + (
        [story.spend[-1]] if story.spend and (len(story.spend) - 1) % step else []
    )
    return {
        "phases": [
            {"phase": p.name, "start": since(p.started_at),
             "end": since(p.finished_at) if p.finished_at else None, "outcome": p.outcome}
            for p in story.phases
        ],
        "spend": [[since(s.at), round(s.usd, 6), s.tokens] for s in thinned],
    }  # fmt: skip


def _budget(view: CampaignView) -> dict[str, Any]:
    spent = view.budget
    return {
        "experiments": spent.experiments,
        "max_experiments": spent.limits.max_experiments,
        "failed": spent.failed,
        "compute_seconds": spent.compute_seconds,
        "elapsed_seconds": spent.elapsed_seconds,
        "usd": spent.usd,
        "input_tokens": spent.input_tokens,
        "output_tokens": spent.output_tokens,
        "exhausted": list(spent.exhausted),
    }


def _brief(row: Row | None) -> dict[str, Any] | None:
    return None if row is None else {"label": row.label, "mean": row.mean, "spread": row.spread, "n": row.n}
