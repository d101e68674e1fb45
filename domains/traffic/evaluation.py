"""The fixed evaluation protocol: chronological splits, forecast origins and the metrics. Do not change.

Candidates are compared only if these rules stay put, like nanoGPT's `prepare.py`. The protocol
follows the traffic forecasting literature: chronological train/validation/test splits, a forecast of
the next hour from test origins, and masked errors (a missing reading is never scored). Every rule is
stated in minutes, not steps, so that it means the same for 5-minute, 15-minute or hourly data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from data import Series

from shared.errors import ConfigError

__all__ = [
    "HISTORY_DAYS",
    "HORIZONS",
    "HORIZON_SPACING_MINUTES",
    "MAX_ORIGINS",
    "TRAIN_PERCENT",
    "VAL_PERCENT",
    "Splits",
    "history_steps",
    "horizon_steps",
    "metrics",
    "split",
    "targets",
    "test_origins",
]

TRAIN_PERCENT = 70
VAL_PERCENT = 10
# The horizons' ranks, h1..h4, whatever the cadence: a forecast is always 4 rows, and the metrics
# per horizon are named `mae_h1` ... `mae_h4` for any data. Their steps ahead: `horizon_steps`.
HORIZONS = (1, 2, 3, 4)
HORIZON_SPACING_MINUTES = 15
HISTORY_DAYS = 7
# Grading asks for one forecast per hour of the test split, and never more than this many.
MAX_ORIGINS = 250
_MINUTES_PER_HOUR = 60
_MIN_DAYS = 4
_GOLDEN_FRACTION = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class Splits:
    """Row bounds: train is [0, train_end), validation [train_end, val_end), test [val_end, end).

    `origins` are the rows graded from (see `test_origins`), fixed once per series by `split`.
    """

    train_end: int
    val_end: int
    end: int
    origins: np.ndarray = field(compare=False, repr=False)


def horizon_steps(step_minutes: int) -> tuple[int, ...]:
    """How many steps ahead each horizon lies: 15, 30, 45 and 60 minutes, rounded up to whole steps.

    So the last horizon is the next hour at any cadence up to 15 minutes (5-minute data: steps 3, 6, 9
    and 12). At a coarser cadence a quarter hour rounds up to one step, and the horizons are the next
    four readings (hourly data: 1 to 4 hours ahead), which still cover the next hour.
    """
    spacing = -(-HORIZON_SPACING_MINUTES // step_minutes)
    return tuple(rank * spacing for rank in HORIZONS)


def split(series: Series, source: str) -> Splits:
    """The chronological splits of `series` and its test origins; refuses a series too short for them."""
    end = len(series.timestamps)
    if end < _MIN_DAYS * series.steps_per_day:
        raise ConfigError(
            f"{source}: only {end} time steps; the harness needs at least {_MIN_DAYS} days "
            f"({_MIN_DAYS * series.steps_per_day} steps) to split into train, validation and test"
        )
    train_end = end * TRAIN_PERCENT // 100
    val_end = end * (TRAIN_PERCENT + VAL_PERCENT) // 100
    origins = _with_an_observed_target(series, _spread_origins(series, val_end, end))
    if not len(origins):
        raise ConfigError(
            f"{source}: the test split (the last {end - val_end} steps) holds no forecast origin whose "
            "targets lie in it with at least one observed reading; give more data, or fewer gaps"
        )
    return Splits(train_end=train_end, val_end=val_end, end=end, origins=origins)


def history_steps(series: Series) -> int:
    """How many steps up to and including an origin the candidate sees: one week, for weekly patterns."""
    return HISTORY_DAYS * series.steps_per_day


def test_origins(splits: Splits) -> np.ndarray:
    """The rows graded from: each origin's targets lie in the test split, and at least one is observed.

    From the last validation step on, one origin per hour's worth of steps (wider blocks where that
    would exceed `MAX_ORIGINS`), at an offset within its block that follows the golden-ratio sequence:
    the origins' minutes past the hour never settle into a cycle that would line up with the time of
    day, as a fixed stride of one hour would (every origin on the hour), yet the choice is fixed.
    """
    return splits.origins


def targets(series: Series, origins: np.ndarray) -> np.ndarray:
    """The true values, shaped (origin, horizon, sensor); NaN where the reading is missing."""
    return series.values[origins[:, None] + np.array(horizon_steps(series.step_minutes))[None, :]]


def metrics(forecasts: np.ndarray, truth: np.ndarray, step_minutes: int) -> dict[str, float]:
    """Masked MAE (the primary metric), RMSE, MAPE (% on targets above zero) and MAE per horizon rank.

    `step_minutes` does not change the names: `mae_h1` ... `mae_h4` exist for any cadence.
    """
    observed = ~np.isnan(truth)
    errors = np.where(observed, forecasts - np.nan_to_num(truth), np.nan)
    result = {"mae": _mean(np.abs(errors)), "rmse": float(np.sqrt(_mean(errors**2)))}
    positive = observed & (np.nan_to_num(truth) > 0)
    if positive.any():
        result["mape"] = 100.0 * float(np.mean(np.abs(errors[positive]) / truth[positive]))
    for index, rank in enumerate(HORIZONS):
        result[f"mae_h{rank}"] = _mean(np.abs(errors[:, index]))
    return result


def _spread_origins(series: Series, val_end: int, end: int) -> np.ndarray:
    """The origins `test_origins` describes, before those without an observed target are dropped."""
    first, count = val_end - 1, end - max(horizon_steps(series.step_minutes)) - val_end + 1
    if count <= 0:
        return np.empty(0, dtype=np.intp)
    steps_per_hour = max(1, _MINUTES_PER_HOUR // series.step_minutes)
    width = max(steps_per_hour, -(-count // MAX_ORIGINS))
    blocks = np.arange(-(-count // width))
    offsets = np.floor((blocks * _GOLDEN_FRACTION) % 1.0 * width).astype(np.intp)
    return first + np.minimum(blocks * width + offsets, count - 1)


def _with_an_observed_target(series: Series, origins: np.ndarray) -> np.ndarray:
    if not len(origins):
        return origins
    return origins[~np.isnan(targets(series, origins)).all(axis=(1, 2))]


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values))
