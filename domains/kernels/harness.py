"""The kernels adapter's trusted harness (see grading.py for the protocol).

harness.py baselines | export --out F | prepare --workspace W | grade --workspace W --seconds S
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from grading import HERE, TASKS, grade, task

from alphalab.sdk import Adapter, DataError, baseline, main

ADAPTER = Adapter.of(__file__)


def prepare(arguments: argparse.Namespace) -> dict[str, Any]:
    workspace: Path = arguments.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "driver.py", workspace / "driver.py")
    if (workspace / "tasks").exists():
        shutil.rmtree(workspace / "tasks")
    shutil.copytree(HERE / "tasks", workspace / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    meta = {name: {"dims": task(name).DIMS, "tolerance": task(name).TOLERANCE} for name in TASKS}
    (workspace / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"workspace": str(workspace), "tasks": TASKS}


def grade_candidate(arguments: argparse.Namespace) -> dict[str, Any]:
    if not arguments.workspace.is_dir():
        raise DataError(f"--workspace: {arguments.workspace} is not a folder")
    hidden = ADAPTER.held_out(arguments.data)
    with tempfile.TemporaryDirectory(dir=".") as scratch:
        return grade(arguments.workspace, arguments.seconds, arguments.memory_mb, hidden, ADAPTER.entry,
                     Path(scratch))  # fmt: skip


def baselines(arguments: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for name, impl, description in (
        ("torch-eager", "naive", "the reference Model itself, run as the candidate"),
        ("torch-fused", "fused", "the shipped ModelNew variants (fused torch ops), one thread"),
    ):
        with tempfile.TemporaryDirectory(dir=".") as scratch:
            workspace = Path(scratch) / "workspace"
            prepare(argparse.Namespace(workspace=workspace))
            shutil.copy(HERE / "candidate.py", workspace / "candidate.py")
            shutil.copytree(
                HERE / "kernels", workspace / "kernels", ignore=shutil.ignore_patterns("__pycache__")
            )
            (workspace / "plan.json").write_text(json.dumps({"impl": impl, "threads": 1, "seed": 0}))
            result = grade(workspace, 60, 4096, (), "candidate.py", Path(scratch))
        if not result["valid"]:
            raise RuntimeError(f"baseline {name}: {result['failures']}")
        rows.append(baseline(name, result["value"], result["metrics"], description))
    return {"baselines": rows}


def export(arguments: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet

    rows = [
        {"task": name, "inputs": str(task(name).shapes(**task(name).DIMS)),
         "parameters": json.dumps(task(name).DIMS),
         "tolerance": task(name).TOLERANCE, "iterations": task(name).ITERATIONS}
        for name in TASKS
    ]  # fmt: skip
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.parquet.write_table(pa.Table.from_pylist(rows), arguments.out)
    return {"out": str(arguments.out), "rows": len(rows)}


if __name__ == "__main__":
    sys.exit(main(ADAPTER, baselines=baselines, export=export, prepare=prepare, grade=grade_candidate))
