"""The data report's statistics: shape, gaps, seasonality and cross-sensor structure of a training matrix.

Pure functions over a wide matrix (a `timestamp` column and one numeric column per sensor, NaN where a
value is missing); no I/O, no clock. The matrix is first put on its regular time grid, so that a lag
of one day is one day even where timestamps are absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.errors import AlphaLabError

__all__ = [
    "DAY",
    "WEEK",
    "BadMatrix",
    "DataReport",
    "SensorStats",
    "daily_profile",
    "describe",
    "to_matrix",
    "weekly_profile",
]

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)


class BadMatrix(AlphaLabError):
    """The exported training data is not a wide matrix this report can describe."""


@dataclass(frozen=True, slots=True)
class SensorStats:
    name: str
    missing_share: float
    longest_gap: int  # steps
    zeros_share: float
    mean: float
    std: float
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class DataReport:
    steps: int
    start: pd.Timestamp
    end: pd.Timestamp
    step: pd.Timedelta
    absent_timestamps: int  # rows of the regular grid the data did not have at all
    missing_share: float
    zeros_share: float
    negative_values: int
    sensors: tuple[SensorStats, ...]
    acf_step: float | None  # median over sensors of the autocorrelation at 1 step, 1 day, 1 week
    acf_day: float | None
    acf_week: float | None
    peak_time: str | None  # time of day of the mean daily profile's maximum and minimum
    trough_time: str | None
    peak_to_trough: float | None
    weekend_ratio: float | None  # weekend level over weekday level
    corr_median: float | None
    corr_min: float | None
    corr_max: float | None
    most_correlated: tuple[str, str, float] | None
    least_correlated: tuple[str, str, float] | None


def to_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The sensors as float columns on a regular, sorted time index (absent timestamps become NaN rows)."""
    if "timestamp" not in frame.columns:
        raise BadMatrix(f"the exported matrix has no 'timestamp' column (columns: {list(frame.columns)[:8]})")
    times = pd.to_datetime(frame["timestamp"], errors="coerce")
    if times.isna().any():
        raise BadMatrix(f"{int(times.isna().sum())} timestamps of the exported matrix are not dates")
    values = frame.drop(columns="timestamp").apply(pd.to_numeric, errors="coerce").astype(float)
    values.columns = [str(c) for c in values.columns]
    if values.shape[1] == 0 or len(values) < 2:
        raise BadMatrix(
            f"the exported matrix has {values.shape[1]} sensors and {len(values)} rows; need 1 and 2"
        )
    values.index = pd.DatetimeIndex(times, name="timestamp")
    values = values[~values.index.duplicated(keep="last")].sort_index()
    step = pd.Series(values.index).diff().median()
    if not step > pd.Timedelta(0):
        raise BadMatrix("the exported matrix's timestamps do not advance")
    grid = pd.date_range(values.index[0], values.index[-1], freq=step, name="timestamp")
    return values.reindex(grid.union(values.index))


def describe(matrix: pd.DataFrame) -> DataReport:
    """Shape, gaps, seasonality and cross-sensor structure of a matrix from `to_matrix`."""
    step = pd.Timedelta(matrix.index.freq or pd.Series(matrix.index).diff().median())
    values = matrix.to_numpy()
    present = ~np.isnan(values)
    profile = daily_profile(matrix)
    corr = _pairwise(matrix)
    return DataReport(
        steps=len(matrix),
        start=matrix.index[0],
        end=matrix.index[-1],
        step=step,
        absent_timestamps=int((~present.any(axis=1)).sum()),
        missing_share=float(1 - present.mean()),
        zeros_share=float((values == 0).sum() / max(present.sum(), 1)),
        negative_values=int((values < 0).sum()),
        sensors=tuple(_sensor_stats(matrix[name]) for name in matrix.columns),
        acf_step=_median_acf(matrix, 1),
        acf_day=_median_acf(matrix, _lag(DAY, step)),
        acf_week=_median_acf(matrix, _lag(WEEK, step)),
        peak_time=_clock(profile.idxmax()) if len(profile) > 1 else None,
        trough_time=_clock(profile.idxmin()) if len(profile) > 1 else None,
        peak_to_trough=_ratio(profile.max(), profile.min()) if len(profile) > 1 else None,
        weekend_ratio=_weekend_ratio(matrix),
        corr_median=float(corr.median()) if len(corr) else None,
        corr_min=float(corr.min()) if len(corr) else None,
        corr_max=float(corr.max()) if len(corr) else None,
        most_correlated=(*corr.idxmax(), float(corr.max())) if len(corr) else None,
        least_correlated=(*corr.idxmin(), float(corr.min())) if len(corr) else None,
    )


def daily_profile(matrix: pd.DataFrame) -> pd.Series:
    """Mean level by time of day (minutes since midnight), each sensor scaled by its own mean."""
    scaled = _scaled(matrix).mean(axis=1)
    minutes = matrix.index.hour * 60 + matrix.index.minute
    return scaled.groupby(minutes).mean().rename_axis("minute")


def weekly_profile(matrix: pd.DataFrame) -> pd.Series:
    """Mean scaled level by hour of the week (0 = Monday 00:00), empty with less than a week of data."""
    if matrix.index[-1] - matrix.index[0] < WEEK:
        return pd.Series(dtype=float)
    hours = matrix.index.dayofweek * 24 + matrix.index.hour
    return _scaled(matrix).mean(axis=1).groupby(hours).mean().rename_axis("hour")


def _sensor_stats(series: pd.Series) -> SensorStats:
    present = series.dropna()
    return SensorStats(
        name=str(series.name),
        missing_share=float(series.isna().mean()),
        longest_gap=_longest_run(series.isna().to_numpy()),
        zeros_share=float((present == 0).mean()) if len(present) else 0.0,
        mean=float(present.mean()) if len(present) else float("nan"),
        std=float(present.std(ddof=0)) if len(present) else float("nan"),
        min=float(present.min()) if len(present) else float("nan"),
        max=float(present.max()) if len(present) else float("nan"),
    )


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True in a boolean vector."""
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def _lag(period: pd.Timedelta, step: pd.Timedelta) -> int:
    return max(1, round(float(period / step)))


def _median_acf(matrix: pd.DataFrame, lag: int) -> float | None:
    """Median over sensors of the lag autocorrelation; None unless the data spans two periods."""
    if len(matrix) < 2 * lag or lag < 1:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant sensor has no autocorrelation
        acfs = np.array([matrix[c].autocorr(lag) for c in matrix.columns], dtype=float)
    acfs = acfs[np.isfinite(acfs)]
    return float(np.median(acfs)) if len(acfs) else None


def _scaled(matrix: pd.DataFrame) -> pd.DataFrame:
    """Each sensor divided by its mean level, so that busy and quiet sensors weigh alike."""
    means = matrix.mean().where(lambda m: m.abs() > 0)
    return matrix / means


def _weekend_ratio(matrix: pd.DataFrame) -> float | None:
    if matrix.index[-1] - matrix.index[0] < WEEK:
        return None
    level = _scaled(matrix).mean(axis=1)
    weekend = matrix.index.dayofweek >= 5
    return _ratio(level[weekend].mean(), level[~weekend].mean())


def _pairwise(matrix: pd.DataFrame) -> pd.Series:
    """Pearson r of every sensor pair (upper triangle), indexed by (sensor, sensor); NaN pairs dropped."""
    corr = matrix.corr(min_periods=3)
    upper = np.triu(np.ones(corr.shape, dtype=bool), k=1)
    return corr.where(upper).stack().dropna()


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else None


def _clock(minute: int) -> str:
    return f"{int(minute) // 60:02d}:{int(minute) % 60:02d}"
