"""The kernels adapter end to end: real harness processes, real sandboxed candidates, its own hacks."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hacks import assemble, judge, suite
from shared.domain import load_domain
from shared.grading import evaluate

KERNELS = Path(__file__).resolve().parents[2] / "domains" / "kernels"
DOMAIN = load_domain(str(KERNELS))
OWN = [hack for hack in suite(DOMAIN) if hack.source.parent == KERNELS / "hacks"]


def _candidate(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(KERNELS / "candidate.py", folder / "candidate.py")
    shutil.copytree(KERNELS / "kernels", folder / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_prepare_and_export(tmp_path: Path) -> None:
    harness = [sys.executable, str(KERNELS / "harness.py")]
    subprocess.run([*harness, "prepare", "--workspace", str(tmp_path / "w")], check=True, timeout=120)
    assert (tmp_path / "w" / "driver.py").is_file() and (tmp_path / "w" / "tasks" / "softmax.py").is_file()
    subprocess.run([*harness, "export", "--out", str(tmp_path / "t.parquet")], check=True, timeout=120)
    import pandas

    table = pandas.read_parquet(tmp_path / "t.parquet")
    assert len(table) == 8 and "timestamp" not in table.columns


def test_default_candidate_is_valid(tmp_path: Path) -> None:
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c")))
    assert verdict.valid, verdict.failures
    assert verdict.value is not None and verdict.value > 0.5  # timing on shared CPUs is noisy (0.9-1.4)
    for name in DOMAIN.manifest.secondary_metrics:
        assert name in verdict.metrics


def test_a_wrong_model_names_its_task(tmp_path: Path) -> None:
    folder = _candidate(tmp_path / "c")
    (folder / "kernels" / "softmax.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass ModelNew(nn.Module):\n"
        "    def forward(self, x):\n        return torch.softmax(x.bfloat16(), dim=-1).float()\n"
    )
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=folder))
    assert not verdict.valid
    assert any("incorrect: softmax" in check.reason for check in verdict.failures), verdict.failures


@pytest.mark.parametrize("hack", OWN, ids=[hack.name for hack in OWN])
def test_each_adapter_hack_is_stopped(hack, tmp_path: Path) -> None:
    budget = DOMAIN.manifest.budget.model_copy(update={"run_seconds": 20, "run_disk_mb": 256})
    candidate = assemble(hack, DOMAIN, tmp_path / "candidate", budget)
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=candidate, budget=budget))
    stopped, how = judge(hack, verdict)
    assert stopped, how
    if hack.rejected_by is None:
        assert verdict.valid and verdict.value is not None and verdict.value < 5.0, verdict


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_gpu_grading_is_valid(tmp_path: Path) -> None:
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c")))
    assert verdict.valid, verdict.failures
    json.dumps(verdict.metrics)
