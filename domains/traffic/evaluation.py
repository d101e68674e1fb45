"""The fixed evaluation protocol: chronological splits, forecast origins and the metrics. Do not change.

Candidates are compared only if these constants stay put, like nanoGPT's `prepare.py`. The protocol
follows the traffic forecasting literature: chronological train/validation/test splits, a forecast of
the next hour from every test origin, and masked errors (a missing reading is never scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from data import Series

from shared.errors import ConfigError

__all__ = [
    "HISTORY_DAYS",
    "HORIZONS",
    "ORIGIN_STRIDE",
    "TRAIN_PERCENT",
    "VAL_PERCENT",
    "Splits",
    "history_steps",
    "metrics",
    "split",
    "targets",
    "test_origins",
]

TRAIN_PERCENT = 70
VAL_PERCENT = 10
HORIZONS = (1, 2, 3, 4)
HISTORY_DAYS = 7
ORIGIN_STRIDE = len(HORIZONS)
_MIN_DAYS = 4


@dataclass(frozen=True)
class Splits:
    """Row bounds: train is [0, train_end), validation [train_end, val_end), test [val_end, end)."""

    train_end: int
    val_end: int
    end: int


def split(series: Series, source: str) -> Splits:
    """The chronological splits of `series`; refuses a series too short to hold a test week's worth."""
    end = len(series.timestamps)
    if end < _MIN_DAYS * series.steps_per_day:
        raise ConfigError(
            f"{source}: only {end} time steps; the harness needs at least {_MIN_DAYS} days "
            f"({_MIN_DAYS * series.steps_per_day} steps) to split into train, validation and test"
        )
    train_end = end * TRAIN_PERCENT // 100
    return Splits(train_end=train_end, val_end=end * (TRAIN_PERCENT + VAL_PERCENT) // 100, end=end)


def history_steps(series: Series) -> int:
    """How many steps up to and including an origin the candidate sees: one week, for weekly patterns."""
    return HISTORY_DAYS * series.steps_per_day


def test_origins(splits: Splits) -> np.ndarray:
    """Origins whose targets all lie in the test split, from the last validation step on.

    One origin every `ORIGIN_STRIDE` steps (hourly for 15-minute data): with as many horizons as the
    stride, every test reading is forecast exactly once, and grading needs a quarter of the requests.
    """
    return np.arange(splits.val_end - 1, splits.end - max(HORIZONS), ORIGIN_STRIDE)


def targets(series: Series, origins: np.ndarray) -> np.ndarray:
    """The true values, shaped (origin, horizon, sensor); NaN where the reading is missing."""
    return series.values[origins[:, None] + np.array(HORIZONS)[None, :]]


def metrics(forecasts: np.ndarray, truth: np.ndarray, step_minutes: int) -> dict[str, float]:
    """Masked MAE (the primary metric), RMSE, MAPE (% on targets above zero) and MAE per horizon."""
    observed = ~np.isnan(truth)
    errors = np.where(observed, forecasts - np.nan_to_num(truth), np.nan)
    result = {"mae": _mean(np.abs(errors)), "rmse": float(np.sqrt(_mean(errors**2)))}
    positive = observed & (np.nan_to_num(truth) > 0)
    if positive.any():
        result["mape"] = 100.0 * float(np.mean(np.abs(errors[positive]) / truth[positive]))
    for index, horizon in enumerate(HORIZONS):
        result[f"mae_{horizon * step_minutes}min"] = _mean(np.abs(errors[:, index]))
    return result


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values))
