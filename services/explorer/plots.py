"""The plots the explorer looks at, rendered off-screen to small PNGs (file name -> bytes).

Figures are built without pyplot: no global figure registry, no display backend, and safe to render
in a worker thread while the event loop keeps the bus connection alive.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from services.explorer.report import daily_profile, weekly_profile

__all__ = ["DPI", "png", "render_plots"]

DPI = 80
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def render_plots(matrix: pd.DataFrame) -> dict[str, bytes]:
    """Every plot that fits the data: heatmap, daily profile, correlation; weekly profile, missing map."""
    plots = {
        "series_heatmap.png": _heatmap(matrix),
        "daily_profile.png": _daily(matrix),
    }
    if not (weekly := weekly_profile(matrix)).empty:
        plots["weekly_profile.png"] = _weekly(weekly)
    if matrix.shape[1] > 1:
        plots["correlation.png"] = _correlation(matrix)
    if matrix.isna().to_numpy().any():
        plots["missing_map.png"] = _missing(matrix)
    return plots


def _heatmap(matrix: pd.DataFrame) -> bytes:
    fig = Figure(figsize=(10, 0.25 * matrix.shape[1] + 1.5))
    ax = fig.subplots()
    scaled = (matrix / matrix.max().where(lambda m: m > 0)).T.to_numpy()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(scaled), aspect="auto", interpolation="nearest", cmap=cmap)
    _time_axis(ax, matrix.index)
    ax.set_yticks(range(matrix.shape[1]), _names(matrix), fontsize=6)
    ax.set_title("Every sensor over time (scaled to its own maximum; grey = missing)")
    fig.colorbar(image, ax=ax, fraction=0.03)
    return png(fig)


def _daily(matrix: pd.DataFrame) -> bytes:
    profile = daily_profile(matrix)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.plot(profile.index / 60, profile.to_numpy(), color="tab:blue")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("level / sensor mean")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.grid(alpha=0.3)
    ax.set_title("Mean daily profile over all sensors")
    return png(fig)


def _weekly(profile: pd.Series) -> bytes:
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    ax.plot(profile.index, profile.to_numpy(), color="tab:orange")
    ax.set_xticks(range(0, 7 * 24, 24), _DAYS)
    ax.set_xlim(0, 7 * 24)
    ax.set_ylabel("level / sensor mean")
    ax.grid(alpha=0.3)
    ax.set_title("Mean weekly profile over all sensors")
    return png(fig)


def _correlation(matrix: pd.DataFrame) -> bytes:
    corr = matrix.corr(min_periods=3).to_numpy()
    size = min(10.0, 2.5 + 0.25 * matrix.shape[1])
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ticks = range(matrix.shape[1])
    ax.set_xticks(ticks, _names(matrix), rotation=90, fontsize=6)
    ax.set_yticks(ticks, _names(matrix), fontsize=6)
    ax.set_title("Pearson correlation between sensors")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return png(fig)


def _missing(matrix: pd.DataFrame) -> bytes:
    fig = Figure(figsize=(10, 0.25 * matrix.shape[1] + 1.5))
    ax = fig.subplots()
    ax.imshow(
        matrix.isna().T.to_numpy(), aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1
    )
    _time_axis(ax, matrix.index)
    ax.set_yticks(range(matrix.shape[1]), _names(matrix), fontsize=6)
    ax.set_title("Missing values (black)")
    return png(fig)


def _time_axis(ax: Axes, index: pd.DatetimeIndex) -> None:
    positions = np.linspace(0, len(index) - 1, num=min(8, len(index))).astype(int)
    ax.set_xticks(positions, [f"{index[p]:%m-%d %H:%M}" for p in positions], fontsize=7, rotation=30)


def _names(matrix: pd.DataFrame) -> list[str]:
    return [str(c) for c in matrix.columns]


def png(fig: Figure) -> bytes:
    """A finished figure as PNG bytes (no pyplot: safe off the main thread)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
