"""Kernel tasks: one row per task (name, input shapes, reference timings...), shown as the task list.

The first timing column (named `*_ms`, `*_us` or `*_seconds`) is plotted per task. A geometric-mean
speedup weighs every task equally however long it runs, so the report names the slowest and the
fastest rather than where the time goes.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from services.explorer.markdown import num, table
from services.explorer.plots import png
from services.explorer.profiles.profile import BadExport, Profile
from shared.domain import Data

__all__ = ["kernels_profile"]

_TIMINGS = ("_ms", "_us", "_seconds")


def kernels_profile(frame: pd.DataFrame, data: Data) -> Profile:
    if frame.empty:
        raise BadExport("the exported task list is empty")
    frame = frame.rename(columns=str)
    name = "task" if "task" in frame.columns else frame.columns[0]
    numeric = [c for c in frame.columns if c != name and pd.api.types.is_numeric_dtype(frame[c])]
    timing = next((c for c in numeric if c.endswith(_TIMINGS)), None)
    lines = [f"{len(frame)} tasks: {', '.join(frame[name].astype(str))}"]
    plots = {}
    if timing is not None:
        ordered = frame.sort_values(timing)
        slow, fast = ordered.iloc[-1], ordered.iloc[0]
        lines.append(
            f"{timing}: slowest {slow[name]} ({slow[timing]:.4g}), "
            f"fastest {fast[name]} ({fast[timing]:.4g}); "
            f"total {frame[timing].sum():.4g}"
        )
        plots["task_timings.png"] = _timings(ordered[name].astype(str), ordered[timing], timing)
    rows = [tuple(_cell(row[c]) for c in frame.columns) for _, row in frame.iterrows()]
    return Profile(
        findings=tuple(lines), sections=(("Tasks", table(tuple(frame.columns), rows)),), plots=plots
    )


def _cell(value: object) -> str:
    return num(value, 4) if isinstance(value, float) else str(value)


def _timings(names: pd.Series, values: pd.Series, label: str) -> bytes:
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.2))
    ax = fig.add_subplot()
    ax.barh(list(names), values.to_numpy(), color="tab:red")
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_title("Reference timing per task")
    return png(fig)
