"""The kernels adapter's trusted harness (see grading.py for the protocol).

harness.py baselines | export --out F | prepare --workspace W | grade --workspace W --seconds S
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grading import HERE, TASKS, driver, grade, task

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


BASELINE_SECONDS = 240  # fit and grading limits of a baseline: compiling 8 graphs takes a while
BASELINES = (
    ("torch-eager", "reference", "the reference Model itself, run as the candidate (speedup 1, measured)"),
    ("torch-compile", "reference-compile", "the reference Model under torch.compile (mode default)"),
    ("torch-fused", "fused", "the shipped ModelNew variants (fused torch ops), one thread"),
)


def candidate_workspace(scratch: Path, impl: str) -> Path:
    """A prepared workspace holding the shipped candidate, fitted with every task on `impl`.

    The fit is the adapter's own code, so it runs here, unsandboxed, with the sandbox's environment."""
    workspace = scratch / "workspace"
    prepare(argparse.Namespace(workspace=workspace))
    shutil.copy(HERE / "candidate.py", workspace / "candidate.py")
    shutil.copytree(HERE / "kernels", workspace / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    config = {**{f"impl_{name}": impl for name in TASKS}, "threads": driver.THREADS, "seed": 0}
    (workspace / "config.json").write_text(json.dumps(config))
    fitted = subprocess.run([sys.executable, "candidate.py", "fit", "--config", "config.json"],
                            cwd=workspace, env=candidate_env(workspace), capture_output=True, text=True,
                            timeout=BASELINE_SECONDS)  # fmt: skip
    if fitted.returncode:
        raise RuntimeError(f"fitting the {impl} candidate failed: {fitted.stderr[-2000:]}")
    return workspace


def candidate_env(workspace: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
    return {
        **env,
        "HOME": str(workspace),
        "TMPDIR": str(workspace),
        "OMP_NUM_THREADS": str(driver.THREADS),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def reference_ms(name: str) -> float:
    """The reference's median milliseconds per call at the task's own shape, in this process."""
    import torch

    module = task(name)
    torch.set_num_threads(driver.THREADS)
    model = module.Model(*module.get_init_inputs())
    inputs = [torch.randn(shape) for shape in module.shapes(**module.DIMS)]
    times = []
    with torch.no_grad():
        for _ in range(20):
            begun = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - begun)
    return statistics.median(times[5:]) * 1e3


def baselines(arguments: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for name, impl, description in BASELINES:
        with tempfile.TemporaryDirectory(dir=".") as scratch:
            workspace = candidate_workspace(Path(scratch), impl)
            memory_mb = ADAPTER.budget.run_memory_mb
            result = grade(workspace, BASELINE_SECONDS, memory_mb, (), "candidate.py", Path(scratch))
        if not result["valid"]:
            raise RuntimeError(f"baseline {name}: {result['failures']}")
        rows.append(baseline(name, result["value"], result["metrics"], description))
    return {"baselines": rows}


def export(arguments: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet

    rows = [
        {"task": name, "reference_ms": reference_ms(name),
         "inputs": str(task(name).shapes(**task(name).DIMS)), "parameters": json.dumps(task(name).DIMS),
         "tolerance": task(name).TOLERANCE, "iterations": task(name).ITERATIONS}
        for name in TASKS
    ]  # fmt: skip
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.parquet.write_table(pa.Table.from_pylist(rows), arguments.out)
    return {"out": str(arguments.out), "rows": len(rows)}


if __name__ == "__main__":
    sys.exit(main(ADAPTER, baselines=baselines, export=export, prepare=prepare, grade=grade_candidate))
