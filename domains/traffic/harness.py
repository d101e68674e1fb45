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
from evaluation import HORIZONS, history_steps, metrics, split, targets, test_origins
from grading import grade

from shared.domain import load_domain
from shared.errors import ConfigError

# The limits for the predict step default to this adapter's own budget, the one the worker fits under;
# the manifest also names the held-out data the predict step must not see.
ADAPTER = load_domain(str(Path(__file__).parent))
BUDGET = ADAPTER.manifest.budget


def baselines(series: Series, source: str) -> dict[str, Any]:
    """Each reference forecast, made from the grading's own origins and scored by its own metrics."""
    splits = split(series, source)
    origins = test_origins(splits)
    truth = targets(series, origins)
    rows = []
    for name, (description, forecaster) in BASELINES.items():
        scores = metrics(forecaster(series, splits, origins), truth, series.step_minutes)
        rows.append({"name": name, "description": description, "value": scores["mae"], "metrics": scores})
    return {"baselines": rows}


def export(series: Series, source: str, out: Path) -> dict[str, Any]:
    """The train split as a wide table (timestamp, then one column per sensor) for the explorer."""
    import pyarrow.parquet

    rows = split(series, source).train_end
    columns = {"timestamp": pa.array(series.timestamps[:rows])}
    for index, name in enumerate(series.sensors):
        columns[name] = pa.array(series.values[:rows, index])
    out.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.parquet.write_table(pa.table(columns), out)
    return {"out": str(out), "rows": rows, "sensors": len(series.sensors)}


def prepare(series: Series, source: str, workspace: Path) -> dict[str, Any]:
    """Write only what a candidate may train on: train and validation readings and their metadata."""
    splits = split(series, source)
    workspace.mkdir(parents=True, exist_ok=True)
    np.save(workspace / "train.npy", series.values[: splits.train_end])
    np.save(workspace / "val.npy", series.values[splits.train_end : splits.val_end])
    meta = {
        "sensors": list(series.sensors),
        "step_minutes": series.step_minutes,
        "horizons": list(HORIZONS),
        "history_steps": history_steps(series),
        "train_start": str(series.timestamps[0]),
        "val_start": str(series.timestamps[splits.train_end]),
        "train_steps": splits.train_end,
        "val_steps": splits.val_end - splits.train_end,
    }
    (workspace / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"workspace": str(workspace), "files": ["train.npy", "val.npy", "meta.json"], **meta}


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    source = str(arguments.data) if arguments.data else "the traffic-anomaly sample counts"
    try:
        series = load_series(arguments.data)
        if arguments.command == "baselines":
            result = baselines(series, source)
        elif arguments.command == "export":
            result = export(series, source, arguments.out)
        elif arguments.command == "prepare":
            result = prepare(series, source, arguments.workspace)
        else:
            hidden = ADAPTER.held_out(arguments.data and str(arguments.data))
            result = grade(
                series,
                split(series, source),
                arguments.workspace,
                arguments.seconds,
                arguments.memory_mb,
                hidden,
            )
    except ConfigError as err:
        print(f"harness: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="The traffic domain's trusted harness; prints JSON.")
    commands = parser.add_subparsers(dest="command", required=True)
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data", type=Path, help="your own CSV or Parquet matrix (default: the packaged counts)"
    )
    commands.add_parser("baselines", parents=[data], help="score the reference forecasts on the test split")
    export_command = commands.add_parser(
        "export", parents=[data], help="write the train split as wide Parquet"
    )
    export_command.add_argument("--out", type=Path, required=True)
    prepare_command = commands.add_parser("prepare", parents=[data], help="write train/val into a workspace")
    prepare_command.add_argument("--workspace", type=Path, required=True)
    grade_command = commands.add_parser(
        "grade", parents=[data], help="run the candidate's predict step, score it"
    )
    grade_command.add_argument("--workspace", type=Path, required=True)
    grade_command.add_argument("--seconds", type=float, default=BUDGET.run_seconds, help="wall and CPU limit")
    grade_command.add_argument(
        "--memory-mb", type=int, default=BUDGET.run_memory_mb, help="address-space limit (MB)"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
