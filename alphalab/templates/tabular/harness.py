"""This adapter's trusted harness, on the lab's adapter SDK (docs/adapters.md documents the protocol).

    harness.py baselines | export --out F | prepare --workspace W | grade --workspace W  [--data FILE]

`grade` sends the test rows' features, in batches, to the candidate's sandboxed `predict` step and
reads one answer per batch: `{"probabilities": [[p per class] per row]}`. Each row must hold a
probability per class, each finite, non-negative and summing to 1. Accuracy (the metric) counts the
most probable class; log_loss scores the probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
from data import Table, frame_of, load, split

from alphalab.sdk import Adapter, CandidateStep, DataError, StepFailed, baseline, finite_number, main, verdict

ADAPTER = Adapter.of(__file__)
BATCH_ROWS = 100
_TOLERANCE = 1e-3


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    chosen = probabilities[np.arange(len(labels)), labels]
    return {
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "log_loss": float(-np.mean(np.log(np.clip(chosen, 1e-15, 1.0)))),
    }


def baselines(arguments: argparse.Namespace) -> dict[str, Any]:
    table = load(arguments.data)
    rows = split(table)
    train_x, train_y = table.features[rows.train], table.labels[rows.train]
    classes = len(table.classes)
    prior = np.bincount(train_y, minlength=classes) / len(train_y)
    majority = np.tile(np.eye(classes)[prior.argmax()] * 0.5 + prior * 0.5, (len(rows.test), 1))
    mean, std = np.nanmean(train_x, axis=0), np.nanstd(train_x, axis=0) + 1e-9
    standard = np.nan_to_num((train_x - mean) / std)
    centroids = np.stack([standard[train_y == c].mean(axis=0) for c in range(classes)])
    test = np.nan_to_num((table.features[rows.test] - mean) / std)
    closeness = -((test[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    centroid = np.exp(closeness - closeness.max(axis=1, keepdims=True))
    centroid /= centroid.sum(axis=1, keepdims=True)
    truth = table.labels[rows.test]
    return {
        "baselines": [
            baseline(name, (s := scores(p, truth))["accuracy"], s)
            for name, p in (("majority", majority), ("nearest-centroid", centroid))
        ]
    }


def export(arguments: argparse.Namespace) -> dict[str, Any]:
    table = load(arguments.data)
    frame = frame_of(table, split(table).train)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(arguments.out)
    return {"out": str(arguments.out), "rows": len(frame)}


def prepare(arguments: argparse.Namespace) -> dict[str, Any]:
    table = load(arguments.data)
    rows, workspace = split(table), arguments.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val"):
        np.save(workspace / f"{part}_x.npy", table.features[getattr(rows, part)])
        np.save(workspace / f"{part}_y.npy", table.labels[getattr(rows, part)])
    meta = {"columns": list(table.columns), "classes": list(table.classes)}
    (workspace / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"workspace": str(workspace), **meta}


def grade(arguments: argparse.Namespace) -> dict[str, Any]:
    if not arguments.workspace.is_dir():
        raise DataError(f"--workspace: {arguments.workspace} is not a folder; run `prepare` into it first")
    table = load(arguments.data)
    test = split(table).test
    batches = [test[i : i + BATCH_ROWS] for i in range(0, len(test), BATCH_ROWS)]
    step = CandidateStep(
        arguments.workspace, "predict", seconds=arguments.seconds, memory_mb=arguments.memory_mb,
        hidden=ADAPTER.held_out(arguments.data), entry=ADAPTER.entry, requests=len(batches), unit="batches",
    )  # fmt: skip
    answers: list[np.ndarray] = []
    try:
        with step:
            for number, rows in enumerate(batches, start=1):
                which = f"batch {number} of {len(batches)}"
                request = {"rows": [[_cell(v) for v in row] for row in table.features[rows].tolist()]}
                answers.append(_probabilities(step.ask(request, which), len(rows), table, which))
    except StepFailed as failed:
        return verdict(failures=[str(failed)])
    probabilities = np.concatenate(answers)
    if len(probabilities) > 1 and np.ptp(probabilities, axis=0).max() == 0:
        return verdict(failures=["constant: every row got the same probabilities, whatever its features"])
    result = scores(probabilities, table.labels[test])
    return verdict(result["accuracy"], result, rows=len(test))


def _cell(value: float) -> float | None:
    return None if value != value else value


def _probabilities(answer: Any, rows: int, table: Table, which: str) -> np.ndarray:
    expected = '{"probabilities": [[p per class] per row]}'
    if not isinstance(answer, dict) or not isinstance(answer.get("probabilities"), list):
        raise StepFailed(f"malformed: {which} is not an object with probabilities; expected {expected}")
    values = answer["probabilities"]
    classes = len(table.classes)
    if len(values) != rows or not all(isinstance(row, list) and len(row) == classes for row in values):
        raise StepFailed(f"wrong shape: {which} must hold {rows} rows of {classes} probabilities")
    if not all(finite_number(p) for row in values for p in row):
        raise StepFailed(f"not finite: {which} holds values that are not finite numbers")
    probabilities = np.array(values, dtype=float)
    if (probabilities < 0).any() or np.abs(probabilities.sum(axis=1) - 1).max() > _TOLERANCE:
        raise StepFailed(
            f"malformed: {which} holds rows that are not probabilities (negative or not summing to 1)"
        )
    return probabilities


if __name__ == "__main__":
    sys.exit(main(ADAPTER, baselines=baselines, export=export, prepare=prepare, grade=grade))
