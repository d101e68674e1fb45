"""The sensor matrix the traffic harness grades on: the packaged real counts, or a user's own file.

Every source becomes one `Series`: a regular time grid (missing steps reindexed in as NaN) by one
column per sensor. Only pyarrow and numpy are used, because the harness runs once per experiment and
pandas alone would add a second to each start. `traffic_anomaly` is never imported (it pulls in ibis):
its parquet file is located through the installed distribution's metadata.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.errors import ConfigError

__all__ = ["Series", "builtin_data_path", "load_series"]

_MINUTES_PER_DAY = 24 * 60
_LONG_COLUMNS = {"timestamp", "sensor", "value"}


@dataclass(frozen=True)
class Series:
    """Readings on a regular grid: `values[t, s]` is `sensors[s]` at `timestamps[t]`, NaN if missing."""

    timestamps: np.ndarray
    values: np.ndarray
    sensors: tuple[str, ...]
    step_minutes: int

    @property
    def steps_per_day(self) -> int:
        return _MINUTES_PER_DAY // self.step_minutes


def builtin_data_path() -> Path:
    """The 15-minute counts of 22 detectors that ship inside the `traffic-anomaly` wheel."""
    located = importlib.metadata.distribution("traffic-anomaly").locate_file(
        "traffic_anomaly/data/sample_counts.parquet"
    )
    return Path(str(located))


def load_series(path: Path | None = None) -> Series:
    """The packaged counts when `path` is None, else the user's CSV or Parquet file (wide or long)."""
    if path is None:
        source = builtin_data_path()
        table = _read_table(source)
        sensor = pc.binary_join_element_wise(
            pc.cast(table["intersection"], pa.string()), pc.cast(table["detector"], pa.string()), "-"
        )
        long = pa.table({"timestamp": table["timestamp"], "sensor": sensor, "value": table["total"]})
        return _from_long(source, long)
    table = _read_table(path)
    if set(table.column_names) >= _LONG_COLUMNS and len(table.column_names) == 3:
        return _from_long(path, table)
    return _from_wide(path, table)


def _read_table(path: Path) -> pa.Table:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; pass --data a CSV or Parquet file that exists")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            import pyarrow.csv

            return pyarrow.csv.read_csv(path)
        if suffix in {".parquet", ".pq"}:
            import pyarrow.parquet

            return pyarrow.parquet.read_table(path)
    except pa.ArrowException as err:
        raise ConfigError(f"{path}: cannot be read as {suffix[1:]}: {err}") from None
    raise ConfigError(f"{path}: unknown file type {suffix!r}; use a .csv or .parquet file")


def _from_wide(path: Path, table: pa.Table) -> Series:
    if "timestamp" not in table.column_names:
        raise ConfigError(
            f"{path}: no 'timestamp' column; the wide format is a timestamp column plus one numeric "
            "column per sensor (or use the long format: timestamp, sensor, value)"
        )
    sensors = [name for name in table.column_names if name != "timestamp"]
    if not sensors:
        raise ConfigError(f"{path}: no sensor columns beside 'timestamp'; add one numeric column per sensor")
    columns = [_numeric(path, name, table[name]) for name in sensors]
    times = _timestamps(path, table["timestamp"])
    _refuse_duplicates(path, times)
    return _on_grid(path, times, np.column_stack(columns), tuple(sensors))


def _from_long(path: Path, table: pa.Table) -> Series:
    times = _timestamps(path, table["timestamp"])
    values = _numeric(path, "value", table["value"])
    names = pc.cast(table["sensor"], pa.string()).to_numpy(zero_copy_only=False)
    sensors, sensor_index = np.unique(names.astype(str), return_inverse=True)
    stamps, time_index = np.unique(times, return_inverse=True)
    if _has_pairs_twice(time_index, sensor_index, len(sensors)):
        raise ConfigError(f"{path}: column sensor: some sensor has two rows for one timestamp; keep one")
    matrix = np.full((len(stamps), len(sensors)), np.nan)
    matrix[time_index, sensor_index] = values
    return _on_grid(path, stamps, matrix, tuple(str(name) for name in sensors))


def _has_pairs_twice(time_index: np.ndarray, sensor_index: np.ndarray, n_sensors: int) -> bool:
    keys = time_index.astype(np.int64) * n_sensors + sensor_index
    return len(np.unique(keys)) < len(keys)


def _numeric(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ConfigError(
            f"{path}: column {name}: holds {column.type}, not numbers; every sensor column must be numeric "
            "(leave a missing reading empty)"
        )
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    if np.isinf(values).any():
        raise ConfigError(f"{path}: column {name}: holds infinite values; leave missing readings empty")
    return values


def _timestamps(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count:
        raise ConfigError(f"{path}: column timestamp: {column.null_count} rows have no timestamp")
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, pa.timestamp("s", tz=column.type.tz)).to_numpy().astype("datetime64[s]")
    raw = column.to_numpy(zero_copy_only=False).astype(str)
    try:
        return raw.astype("datetime64[s]")
    except ValueError as err:
        raise ConfigError(
            f"{path}: column timestamp: {err}; write timestamps as ISO 8601, e.g. 2024-04-18 00:15:00"
        ) from None


def _refuse_duplicates(path: Path, times: np.ndarray) -> None:
    stamps, counts = np.unique(times, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"{path}: column timestamp: {stamps[counts > 1][0]} appears more than once")


def _on_grid(path: Path, times: np.ndarray, values: np.ndarray, sensors: tuple[str, ...]) -> Series:
    """Sort by time and reindex onto the regular grid of the most common step, NaN where absent."""
    order = np.argsort(times)
    times, values = times[order], values[order]
    if len(times) < 2:
        raise ConfigError(f"{path}: column timestamp: needs at least two distinct timestamps")
    step = _step_minutes(path, times)
    offsets = (times - times[0]).astype(np.int64) // 60
    if (offsets % step).any():
        bad = times[np.argmax(offsets % step != 0)]
        raise ConfigError(f"{path}: column timestamp: {bad} is off the {step}-minute grid of the other rows")
    grid = np.full((offsets[-1] // step + 1, len(sensors)), np.nan)
    grid[offsets // step] = values
    timestamps = times[0] + np.arange(len(grid)) * np.timedelta64(step * 60, "s")
    return Series(timestamps=timestamps, values=grid, sensors=sensors, step_minutes=step)


def _step_minutes(path: Path, times: np.ndarray) -> int:
    gaps, counts = np.unique(np.diff(times).astype(np.int64), return_counts=True)
    seconds = int(gaps[counts.argmax()])
    if seconds % 60 or _MINUTES_PER_DAY % (seconds // 60):
        raise ConfigError(
            f"{path}: column timestamp: the usual step is {seconds} s; it must be whole minutes that divide "
            "a day (e.g. 5, 15 or 60 minutes)"
        )
    return seconds // 60
