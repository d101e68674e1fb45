"""The traffic adapter's data: the packaged counts, users' own files; prepare, export and baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domains.traffic.data import load_series
from shared.errors import ConfigError
from tests.domains.traffic_cli import harness, harness_json

MISSING_STEPS = ["2024-04-18T04:30:00", "2024-04-18T04:45:00", "2024-04-18T05:00:00", "2024-05-07T04:45:00"]


def _write_wide_csv(path: Path, days: int, sensors: int = 3) -> np.ndarray:
    """A synthetic 15-minute matrix repeating exactly every day; returns the values written."""
    steps = days * 96
    times = np.datetime64("2024-01-01T00:00") + np.arange(steps) * np.timedelta64(15, "m")
    values = np.outer(20 + np.abs(np.arange(steps) % 96 - 48), np.arange(1, sensors + 1))
    lines = ["timestamp," + ",".join(f"s{index}" for index in range(sensors))]
    lines += [
        f"{time}," + ",".join(str(int(v)) for v in row) for time, row in zip(times, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return values


def test_package_data_is_a_full_15_minute_grid_with_nan_for_missing_steps() -> None:
    """The packaged counts become 2,496 steps x 22 detectors; the 4 absent steps are all-NaN rows."""
    series = load_series()
    assert series.values.shape == (2496, 22)
    assert series.step_minutes == 15
    assert str(series.timestamps[0]) == "2024-04-18T00:00:00"
    assert str(series.timestamps[-1]) == "2024-05-13T23:45:00"
    missing = series.timestamps[np.isnan(series.values).all(axis=1)]
    assert [str(stamp) for stamp in missing] == MISSING_STEPS
    assert np.isnan(series.values).sum() == len(MISSING_STEPS) * 22


def test_a_wide_csv_with_a_gap_is_reindexed_onto_its_grid(tmp_path: Path) -> None:
    """A user's wide CSV loads; a skipped row becomes NaN and an empty cell a missing reading."""
    path = tmp_path / "mine.csv"
    path.write_text(
        "timestamp,north,south\n2024-01-01 00:00:00,1,10\n2024-01-01 00:05:00,2,\n2024-01-01 00:15:00,4,40\n"
    )
    series = load_series(path)
    assert series.sensors == ("north", "south")
    assert series.step_minutes == 5
    np.testing.assert_array_equal(series.values, [[1, 10], [2, np.nan], [np.nan, np.nan], [4, 40]])


def test_a_wide_parquet_loads(tmp_path: Path) -> None:
    """A user's wide Parquet file with real timestamps loads in row order, whatever order it was in."""
    times = np.array(["2024-01-01T01:00", "2024-01-01T00:00"], dtype="datetime64[s]")
    path = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"timestamp": times, "a": [2.5, 1.5]}), path)
    series = load_series(path)
    assert series.step_minutes == 60
    np.testing.assert_array_equal(series.values[:, 0], [1.5, 2.5])


def test_a_long_csv_loads(tmp_path: Path) -> None:
    """A long file (timestamp, sensor, value) is pivoted to one column per sensor."""
    path = tmp_path / "long.csv"
    path.write_text(
        "timestamp,sensor,value\n"
        "2024-01-01 00:00,b,2\n2024-01-01 00:00,a,1\n2024-01-01 00:30,a,3\n2024-01-01 00:30,b,4\n"
    )
    series = load_series(path)
    assert series.sensors == ("a", "b")
    np.testing.assert_array_equal(series.values, [[1, 2], [3, 4]])


BAD_FILES = {
    "text in a sensor column": (
        "timestamp,a,b\n2024-01-01 00:00,1,x\n2024-01-01 00:15,2,3\n",
        "column b: holds string",
    ),
    "no timestamp column": ("time,a\n2024-01-01 00:00,1\n", "no 'timestamp' column"),
    "unreadable timestamp": ("timestamp,a\n01/02/2024,1\n02/02/2024,2\n", "column timestamp:"),
    "repeated timestamp": ("timestamp,a\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n", "appears more than once"),
    "off-grid timestamp": (
        "timestamp,a\n2024-01-01 00:00,1\n2024-01-01 00:15,1\n2024-01-01 00:30,1\n2024-01-01 00:40,1\n",
        "2024-01-01T00:40:00 is off the 15-minute grid",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_malformed_user_files_are_refused_naming_file_and_column(tmp_path: Path, case: str) -> None:
    """A malformed user file is refused with a message naming the file and the column at fault."""
    text, expected = BAD_FILES[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_series(path)
    assert str(path) in str(refused.value) and expected in str(refused.value)


def test_the_harness_reports_bad_data_on_stderr_with_exit_2(tmp_path: Path) -> None:
    """The CLI turns a data problem into one stderr line and exit code 2, never a traceback."""
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILES["text in a sensor column"][0])
    refused = harness("baselines", "--data", str(path), expect_exit=2)
    assert f"{path}: column b" in refused.stderr and "Traceback" not in refused.stderr


def test_too_short_user_data_is_refused(tmp_path: Path) -> None:
    """Two days cannot be split into train, validation and test; the harness says how much it needs."""
    path = tmp_path / "short.csv"
    _write_wide_csv(path, days=2)
    refused = harness("prepare", "--workspace", str(tmp_path / "w"), "--data", str(path), expect_exit=2)
    assert "needs at least 4 days" in refused.stderr


def test_prepare_writes_train_and_validation_but_no_test_reading(tmp_path: Path) -> None:
    """The workspace holds the first 80% of steps only; no byte block of the test split is in any file."""
    workspace = tmp_path / "run"
    harness("prepare", "--workspace", str(workspace))
    meta = json.loads((workspace / "meta.json").read_text())
    train, val = np.load(workspace / "train.npy"), np.load(workspace / "val.npy")
    series = load_series()
    test_start = meta["train_steps"] + meta["val_steps"]
    assert (len(train), len(val)) == (meta["train_steps"], meta["val_steps"]) == (1747, 249)
    np.testing.assert_array_equal(np.vstack([train, val]), series.values[:test_start])
    assert meta["horizons"] == [1, 2, 3, 4] and meta["history_steps"] == 7 * 96
    last_seen = np.datetime64(meta["val_start"]) + (meta["val_steps"] - 1) * np.timedelta64(15, "m")
    assert last_seen < series.timestamps[test_start]
    test_block = series.values[test_start : test_start + 2].tobytes()
    assert sorted(path.name for path in workspace.iterdir()) == ["meta.json", "train.npy", "val.npy"]
    assert all(test_block not in path.read_bytes() for path in workspace.iterdir())


def test_export_writes_the_train_split_as_a_wide_matrix(tmp_path: Path) -> None:
    """The explorer's matrix: a timestamp column plus one column per detector, train rows only."""
    out = tmp_path / "train.parquet"
    summary = harness_json("export", "--out", str(out))
    table = pq.read_table(out)
    assert summary == {"out": str(out), "rows": 1747, "sensors": 22}
    assert table.num_rows == 1747 and table.column_names[0] == "timestamp" and table.num_columns == 23
    assert table["timestamp"].to_numpy()[-1] < load_series().timestamps[1747]


def test_baselines_score_the_test_split_with_the_grading_metrics() -> None:
    """Three baselines, each with a finite MAE and every secondary metric; the profile beats persistence."""
    rows = {row["name"]: row for row in harness_json("baselines")["baselines"]}
    assert list(rows) == ["last-value", "seasonal-naive", "historical-average"]
    for row in rows.values():
        assert row["value"] == row["metrics"]["mae"] and math.isfinite(row["value"])
        assert set(row["metrics"]) == {"mae", "rmse", "mape", "mae_h1", "mae_h2", "mae_h3", "mae_h4"}
        assert all(math.isfinite(value) for value in row["metrics"].values())
    assert rows["historical-average"]["value"] < rows["last-value"]["value"] - 0.5


def test_user_data_runs_through_baselines_and_prepare(tmp_path: Path) -> None:
    """A user's own matrix is split and scored the same way, with the same metric names."""
    path = tmp_path / "mine.csv"
    _write_wide_csv(path, days=10)
    rows = harness_json("baselines", "--data", str(path))["baselines"]
    seasonal = next(row for row in rows if row["name"] == "seasonal-naive")
    assert seasonal["value"] == 0.0
    assert "mae_h4" in seasonal["metrics"]
    prepared = harness_json("prepare", "--workspace", str(tmp_path / "w"), "--data", str(path))
    assert (prepared["train_steps"], prepared["val_steps"]) == (672, 96)
    assert prepared["sensors"] == ["s0", "s1", "s2"]
