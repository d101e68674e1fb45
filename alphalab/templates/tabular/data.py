"""The table and its fixed split: a generated one by default, else the user's CSV or Parquet (`--data`).

The split is deterministic (rows shuffled by a fixed seed, 60 / 20 / 20): train and validation go
to the candidate, test only to the harness. Features must be numeric; the label is any column,
`[data].target` in domain.toml (the last column if that name is absent from the user's file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alphalab.sdk import DataError, read_parquet

TARGET = "label"
_SEED = 20240601


@dataclass(frozen=True)
class Table:
    features: np.ndarray  # float, rows x columns, NaN where missing
    labels: np.ndarray  # int class index per row
    columns: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row indices
    val: np.ndarray
    test: np.ndarray


def load(path: Path | None) -> Table:
    frame = _generated() if path is None else _read(path)
    target = TARGET if TARGET in frame.columns else frame.columns[-1]
    features = frame.drop(columns=[target])
    numeric = features.apply(pd.to_numeric, errors="coerce")
    bad = [c for c in features.columns if numeric[c].isna().sum() > features[c].isna().sum()]
    if bad:
        raise DataError(
            f"{path}: columns {bad[:5]} hold values that are not numbers; features must be numeric"
        )
    labels, classes = pd.factorize(frame[target].astype(str), sort=True)
    if len(classes) < 2 or len(frame) < 20:
        raise DataError(f"{path}: need at least 20 rows and 2 classes in {target!r}")
    return Table(numeric.to_numpy(float), labels, tuple(map(str, features.columns)), tuple(classes))


def split(table: Table) -> Split:
    order = np.random.default_rng(_SEED).permutation(len(table.labels))
    train_end, val_end = len(order) * 60 // 100, len(order) * 80 // 100
    return Split(order[:train_end], order[train_end:val_end], order[val_end:])


def frame_of(table: Table, rows: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(table.features[rows], columns=list(table.columns))
    frame[TARGET] = [table.classes[i] for i in table.labels[rows]]
    return frame


def _read(path: Path) -> pd.DataFrame:
    try:
        return read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as a table ({err})") from None


def _generated() -> pd.DataFrame:
    """Three classes from overlapping clusters in 8 features, two of them noise: learnable, not trivial."""
    rng = np.random.default_rng(7)
    rows, centers = 1500, rng.normal(0, 1.2, size=(3, 6))
    labels = rng.integers(0, 3, rows)
    signal = centers[labels] + rng.normal(0, 1.0, size=(rows, 6))
    signal[:, 0] = signal[:, 0] * signal[:, 1]  # one interaction that a linear model misses
    features = np.column_stack([signal, rng.normal(size=(rows, 2))])
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(8)])
    frame[TARGET] = [f"class_{i}" for i in labels]
    return frame
