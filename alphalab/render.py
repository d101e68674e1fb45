"""Human-readable views of the projections, as rich renderables."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from shared.grading import Verdict
from shared.projections import CampaignView
from shared.projections.leaderboard import Row
from shared.projections.spend import Line, Spend

__all__ = [
    "budget_table",
    "campaign",
    "cost_table",
    "kanban_table",
    "leaderboard_table",
    "playbook_table",
    "versus_baselines_table",
]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _with_spread(row: Row | None) -> str:
    """A row's mean as `mean ± spread (n=...)` (no spread with a single run)."""
    if row is None:
        return "-"
    spread = f" ± {row.spread:.2g}" if row.n > 1 else ""
    return f"{_number(row.mean)}{spread} (n={row.n})"


def leaderboard_table(view: CampaignView, top: int | None = None) -> Table:
    """Every row, or the `top` configurations and every baseline (in rank order either way).

    The champion (the best declared after replicates, see the leaderboard projection) is starred and
    always shown.
    """
    board = view.leaderboard
    champion = board.champion()
    arrow = "lower is better" if board.direction == "minimize" else "higher is better"
    ranked = list(enumerate(board.ranked(), start=1))
    if top is not None:
        configurations = [row for row in board.ranked() if not row.baseline]
        best = {row.key for row in configurations[:top]}
        ranked = [(rank, row) for rank, row in ranked if row.baseline or row.key in best or row is champion]
    shown = "" if top is None or len(ranked) == len(board.rows) else f", top {top} of {len(board.rows)} rows"
    starred = "" if champion is None else "; * the declared best"
    table = Table(
        title=f"Leaderboard - {board.metric or '?'} ({arrow}{shown}{starred})", title_justify="left"
    )
    for column in ("#", "candidate", "mean", "± spread", "n", "best", "best run"):
        table.add_column(
            column, justify="right" if column in {"#", "mean", "± spread", "n", "best"} else "left"
        )
    for name in board.secondary:  # of each row's best result
        table.add_column(name, justify="right")
    for rank, row in ranked:
        label = Text(f"[baseline] {row.label}", style="dim") if row.baseline else Text(row.label)
        if row is champion:
            label = Text(f"* {row.label}", style="bold")
        table.add_row(
            str(rank),
            label,
            _number(row.mean),
            _number(row.spread),
            str(row.n),
            _number(row.best),
            row.best_run_id or "-",
            *(_number(row.best_metrics.get(name)) for name in board.secondary),
        )
    return table


def playbook_table(view: CampaignView) -> Table:
    book = view.playbook
    table = Table(title=f"Playbook - revision {book.revision}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("lesson")
    table.add_column("evidence (runs)")
    for number, lesson in enumerate(book.lessons, start=1):
        table.add_row(str(number), lesson.text, ", ".join(lesson.run_ids) or "-")
    return table


def kanban_table(view: CampaignView) -> Table:
    table = Table(title="Kanban", title_justify="left")
    table.add_column("state")
    table.add_column("proposals", justify="right")
    table.add_column("ids")
    for state, ids in view.kanban.columns().items():
        shown = ", ".join(ids[:8]) + (f" (+{len(ids) - 8})" if len(ids) > 8 else "")
        table.add_row(state, str(len(ids)), shown)
    return table


def budget_table(view: CampaignView) -> Table:
    spent, limits = view.budget, view.budget.limits
    table = Table(title="Budget", title_justify="left")
    for column in ("spent on", "used", "limit"):
        table.add_column(column, justify="left" if column == "spent on" else "right")
    table.add_row(
        "experiments", f"{spent.experiments} ({spent.failed} failed)", _number(limits.max_experiments)
    )
    table.add_row("elapsed seconds", f"{spent.elapsed_seconds:.1f}", _number(limits.max_wall_seconds))
    table.add_row("compute seconds", f"{spent.compute_seconds:.1f}", "-")
    table.add_row("LLM USD", f"{spent.usd:.4f} ({spent.llm_calls} calls)", _number(limits.max_usd))
    table.add_row("LLM tokens in/out", f"{spent.input_tokens}/{spent.output_tokens}", "-")
    return table


def versus_baselines_table(view: CampaignView) -> Table:
    """The declared best (the champion, else the top row) against every baseline, in percent."""
    board = view.leaderboard
    best, champion = board.declared(), board.champion()
    table = Table(title="Best result against every baseline", title_justify="left")
    heading = "best (confirmed)" if best is not None and best is champion else "best (unconfirmed)"
    for column in ("baseline", board.metric or "metric", heading, "improvement"):
        table.add_column(column, justify="left" if column == "baseline" else "right")
    for row in (r for r in board.ranked() if r.baseline):
        gain = board.improvement(best, over=row) if best is not None else None
        shown = "-" if gain is None else f"{gain:+.1f}%"
        table.add_row(row.label, _number(row.mean), _with_spread(best), shown)
    return table


def campaign(view: CampaignView) -> Group:
    """Every projection of one campaign, one table each."""
    heading = Text(
        f"Campaign {view.campaign_id} - domain {view.domain or '?'} - {view.status} - {view.position} events",
        style="bold",
    )
    return Group(
        heading, leaderboard_table(view), playbook_table(view), kanban_table(view), budget_table(view)
    )


def verdict_table(verdict: Verdict, metric: str) -> Table:
    """One grading: each check passed or failed with its reason, then the metrics."""
    title = (
        f"valid: {metric} = {verdict.value:.6g}" if verdict.valid and verdict.value is not None else "INVALID"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("check")
    table.add_column("")
    table.add_column("reason", overflow="fold")
    for check in verdict.checks:
        table.add_row(check.name, "[green]ok[/]" if check.passed else "[red]failed[/]", check.reason)
    for name, value in verdict.metrics.items():
        table.add_row(f"metric {name}", "", f"{value:.6g}")
    return table


def harness_table(view: CampaignView) -> Table:
    """Phase 2: what stopped each known hack, or how it got through, and the verdict on the harness."""
    table = Table(
        title=f"Harness {view.harness}: {view.harness_digest or '(not tested)'}", title_justify="left"
    )
    table.add_column("attack")
    table.add_column("outcome", overflow="fold")
    outcomes = view.harness_tested.outcomes if view.harness_tested else {}
    failed = set(view.harness_tested.failed) if view.harness_tested else set()
    for name, outcome in outcomes.items():
        table.add_row(f"[red]{name}[/]" if name in failed else name, outcome)
    for reason in view.harness_reasons:
        table.add_row("[red]rejected[/]", reason)
    return table


def cost_table(spent: Spend) -> Table:
    """Spend by role and model, and in total: calls, tokens, USD and mean latency per call."""
    table = Table(title="LLM spend")
    for column in ("role", "model", "calls", "input tok", "cached", "output tok", "USD", "s/call"):
        table.add_column(column, justify="left" if column in ("role", "model") else "right")

    def cells(line: Line) -> list[str]:
        per_call = line.seconds / line.calls if line.calls else 0.0
        return [
            str(line.calls),
            f"{line.input_tokens:,}",
            f"{line.cached_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.usd:.4f}",
            f"{per_call:.2f}",
        ]

    for (role, model), line in sorted(spent.lines.items()):
        table.add_row(role, model, *cells(line))
    table.add_row("total", "", *cells(spent.total), style="bold")
    return table
