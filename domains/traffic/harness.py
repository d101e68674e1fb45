"""The traffic adapter's trusted harness: a CLI so that a lab in any language can drive it.

    harness.py baselines [--data FILE]                  reference forecasts scored on the test split
    harness.py export --out FILE.parquet [--data FILE]  the train split, wide, for the explorer
    harness.py prepare --workspace W [--data FILE]      train and validation splits into a run's workspace
    harness.py grade --workspace W [--data FILE] [--seconds S] [--memory-mb M]
                                                        drive the candidate's predict step, score it

Every command prints one JSON object on stdout. A problem with the data or the arguments is printed
on stderr as one line naming the file and field, with exit code 2. Candidates never change this file,
nor `data.py`, `evaluation.py`, `baselines.py` or `grading.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from baselines import BASELINES
from data import Series, load_series
from evaluation import history_steps, horizon_steps, metrics, split, targets, test_origins
from grading import grade

from alphalab.sdk import Adapter, baseline, main

ADAPTER = Adapter.of(__file__)


def baselines(arguments: argparse.Namespace) -> dict[str, Any]:
    """Each reference forecast, made from the grading's own origins and scored by its own metrics."""
    series, source = _series(arguments)
    splits = split(series, source)
    origins = test_origins(splits)
    truth = targets(series, origins)
    rows = []
    for name, (description, forecaster) in BASELINES.items():
        scores = metrics(forecaster(series, splits, origins), truth, series.step_minutes)
        rows.append(baseline(name, scores["mae"], scores, description))
    return {"baselines": rows}


def export(arguments: argparse.Namespace) -> dict[str, Any]:
    """The train split as a wide table (timestamp, then one column per sensor) for the explorer."""
    import pyarrow.parquet

    series, source = _series(arguments)
    rows = split(series, source).train_end
    columns = {"timestamp": pa.array(series.timestamps[:rows])}
    for index, name in enumerate(series.sensors):
        columns[name] = pa.array(series.values[:rows, index])
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.parquet.write_table(pa.table(columns), arguments.out)
    return {"out": str(arguments.out), "rows": rows, "sensors": len(series.sensors)}


def prepare(arguments: argparse.Namespace) -> dict[str, Any]:
    """Write only what a candidate may train on: train and validation readings and their metadata."""
    series, source = _series(arguments)
    splits = split(series, source)
    workspace: Path = arguments.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    np.save(workspace / "train.npy", series.values[: splits.train_end])
    np.save(workspace / "val.npy", series.values[splits.train_end : splits.val_end])
    meta = {
        "sensors": list(series.sensors),
        "step_minutes": series.step_minutes,
        "horizons": list(horizon_steps(series.step_minutes)),
        "history_steps": history_steps(series),
        "train_start": str(series.timestamps[0]),
        "val_start": str(series.timestamps[splits.train_end]),
        "train_steps": splits.train_end,
        "val_steps": splits.val_end - splits.train_end,
    }
    (workspace / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"workspace": str(workspace), "files": ["train.npy", "val.npy", "meta.json"], **meta}


def grade_candidate(arguments: argparse.Namespace) -> dict[str, Any]:
    """Drive the candidate's predict step over the test origins and score its forecasts."""
    series, source = _series(arguments)
    hidden = ADAPTER.held_out(arguments.data)
    return grade(
        series, split(series, source), arguments.workspace, arguments.seconds, arguments.memory_mb, hidden,
        ADAPTER.entry,
    )  # fmt: skip


def _series(arguments: argparse.Namespace) -> tuple[Series, str]:
    source = str(arguments.data) if arguments.data else "the traffic-anomaly sample counts"
    return load_series(arguments.data), source


if __name__ == "__main__":
    sys.exit(main(ADAPTER, baselines=baselines, export=export, prepare=prepare, grade=grade_candidate))
