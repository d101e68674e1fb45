"""The literature's reference forecasts, made from the same origins and scored by the same metrics.

Each baseline sees only what a candidate sees: readings at or before the origin, and for the historical
average the train and validation splits. A missing reading is carried forward from the last one seen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from data import Series
from evaluation import HORIZONS, Splits, horizon_steps

__all__ = ["BASELINES"]

Forecaster = Callable[[Series, Splits, np.ndarray], np.ndarray]


def last_value(series: Series, splits: Splits, origins: np.ndarray) -> np.ndarray:
    """Every horizon gets the last reading at or before the origin."""
    filled = _carried_forward(series.values)
    return np.repeat(filled[origins][:, None, :], len(HORIZONS), axis=1)


def seasonal_naive(series: Series, splits: Splits, origins: np.ndarray) -> np.ndarray:
    """The reading one week before the target, or one day before where less than a week precedes it."""
    filled = _carried_forward(series.values)
    week, day = 7 * series.steps_per_day, series.steps_per_day
    target_rows = _target_rows(series, origins)
    source_rows = np.where(target_rows - week >= 0, target_rows - week, target_rows - day)
    return filled[source_rows]


def historical_average(series: Series, splits: Splits, origins: np.ndarray) -> np.ndarray:
    """The train+validation mean for the target's weekday and time of day, else time of day, else overall."""
    seen = series.values[: splits.val_end]
    slots = _weekly_slots(series)
    day = series.steps_per_day
    weekly = _means_by(seen, slots[: splits.val_end], 7 * day)
    daily = _means_by(seen, slots[: splits.val_end] % day, day)
    target_slots = slots[_target_rows(series, origins)]
    forecast = weekly[target_slots]
    forecast = np.where(np.isnan(forecast), daily[target_slots % day], forecast)
    return np.where(np.isnan(forecast), np.nanmean(seen, axis=0), forecast)


def _target_rows(series: Series, origins: np.ndarray) -> np.ndarray:
    return origins[:, None] + np.array(horizon_steps(series.step_minutes))[None, :]


def _carried_forward(values: np.ndarray) -> np.ndarray:
    rows = np.where(np.isnan(values), 0, np.arange(len(values))[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    return values[rows, np.arange(values.shape[1])]


def _weekly_slots(series: Series) -> np.ndarray:
    """Each row's slot in the week: weekday (Monday 0) times steps per day plus the step of the day."""
    minutes = (series.timestamps - series.timestamps.astype("datetime64[D]")).astype("timedelta64[m]")
    weekday = (series.timestamps.astype("datetime64[D]").astype(np.int64) + 3) % 7
    return weekday * series.steps_per_day + minutes.astype(np.int64) // series.step_minutes


def _means_by(values: np.ndarray, slots: np.ndarray, n_slots: int) -> np.ndarray:
    observed = ~np.isnan(values)
    sums = np.zeros((n_slots, values.shape[1]))
    counts = np.zeros((n_slots, values.shape[1]))
    np.add.at(sums, slots, np.where(observed, values, 0.0))
    np.add.at(counts, slots, observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


BASELINES: dict[str, tuple[str, Forecaster]] = {
    "last-value": ("the last reading at or before the origin, for every horizon", last_value),
    "seasonal-naive": (
        "the reading at the same time one week earlier (one day earlier where the history is shorter)",
        seasonal_naive,
    ),
    "historical-average": (
        "the train+validation mean for the same weekday and time of day",
        historical_average,
    ),
}
