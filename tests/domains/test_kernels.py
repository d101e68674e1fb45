"""The kernels adapter end to end: real harness processes, real sandboxed candidates, its own hacks."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
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
sys.path.append(str(KERNELS))  # the adapter's `tasks` and `kernels` folders, for the in-process checks
from kernels import native  # noqa: E402
from kernels.variants import IMPLS, model  # noqa: E402

# "reference-compile" is the "compile" branch on the reference; the torch-compile baseline grades it.
VARIANTS = [
    (name, impl) for name, impls in IMPLS.items() for impl in impls + ("reference",) if impl != "fused"
]
SHORT = DOMAIN.manifest.budget.model_copy(update={"run_seconds": 30})  # fewer timed rounds, same checks
QUICK = DOMAIN.manifest.budget.model_copy(update={"run_seconds": 20})  # what Phase 2 gives the hacks


def _candidate(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(KERNELS / "candidate.py", folder / "candidate.py")
    shutil.copytree(KERNELS / "kernels", folder / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The C++ extension built and loaded, numba's and inductor's caches in a temporary folder."""
    folder = tmp_path_factory.mktemp("build")
    saved = {key: os.environ.get(key) for key in ("NUMBA_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR")}
    os.environ.update(NUMBA_CACHE_DIR=str(folder / "numba"), TORCHINDUCTOR_CACHE_DIR=str(folder / "inductor"))
    native.load(native.build(folder / "native").parent)
    yield folder
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.update({key: value})


@pytest.mark.parametrize(("name", "impl"), VARIANTS, ids=[f"{name}-{impl}" for name, impl in VARIANTS])
def test_each_variant_matches_the_reference(name: str, impl: str, built: Path) -> None:
    task = importlib.import_module(f"tasks.{name}")
    plan = {f"impl_{name}": impl, "compile_mode": "default", "numba_tile": 64}
    reference, candidate = (
        task.Model(*task.get_init_inputs()),
        model(name, task.get_init_inputs(), plan, "cpu"),
    )
    low = {key: lo for key, (lo, _) in task.CHECK.items()}
    high = {key: hi for key, (_, hi) in task.CHECK.items()}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        # a compiled graph is dynamic in its sizes but specialised on size 1: `low` would compile again
        for dims in (task.DIMS, high) if impl == "compile" else (task.DIMS, low, high):
            inputs = [torch.randn(shape, generator=generator) for shape in task.shapes(**dims)]
            want, got = reference(*inputs), candidate(*inputs)
            assert got.shape == want.shape and got.dtype == want.dtype, (dims, got.shape, got.dtype)
            assert torch.allclose(got, want, atol=task.TOLERANCE, rtol=task.TOLERANCE), (
                dims,
                (got - want).abs().max(),
            )


def test_prepare_and_export(tmp_path: Path) -> None:
    harness = [sys.executable, str(KERNELS / "harness.py")]
    subprocess.run([*harness, "prepare", "--workspace", str(tmp_path / "w")], check=True, timeout=120)
    assert (tmp_path / "w" / "driver.py").is_file() and (tmp_path / "w" / "tasks" / "softmax.py").is_file()
    subprocess.run([*harness, "export", "--out", str(tmp_path / "t.parquet")], check=True, timeout=120)
    import pandas

    table = pandas.read_parquet(tmp_path / "t.parquet")
    assert len(table) == 8 and "timestamp" not in table.columns
    assert (table["reference_ms"] > 0).all(), table  # the explorer plots the first `*_ms` column


def test_default_candidate_is_valid(tmp_path: Path) -> None:
    verdict = asyncio.run(
        evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c"), budget=QUICK)
    )
    assert verdict.valid, verdict.failures
    assert verdict.value is not None and verdict.value > 0.8, verdict.metrics  # fused ops: 1.1-1.3 measured
    for name in DOMAIN.manifest.secondary_metrics:
        assert name in verdict.metrics


def test_the_reference_as_candidate_scores_one(tmp_path: Path) -> None:
    """torch-eager: both sides run the same Model, so interleaved timing must come out near 1."""
    config = {f"impl_{name}": "reference" for name in IMPLS}
    candidate = _candidate(tmp_path / "c")
    verdict = asyncio.run(
        evaluate(DOMAIN, tmp_path / "run", candidate=candidate, config=config, budget=SHORT)
    )
    assert verdict.valid, verdict.failures
    assert 0.85 < verdict.value < 1.15, verdict.metrics


def test_native_numba_and_compiled_variants_grade_valid(tmp_path: Path) -> None:
    config = {"impl_softmax": "cpp", "impl_layernorm": "cpp", "impl_gelu": "cpp", "impl_row_max": "numba",
              "impl_rmsnorm": "numba", "impl_elementwise_chain": "compile", "numba_tile": 1024}  # fmt: skip
    verdict = asyncio.run(
        evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c"), config=config)
    )
    assert verdict.valid, (verdict.failures, verdict.log_tail)


def test_a_wrong_model_names_its_task(tmp_path: Path) -> None:
    folder = _candidate(tmp_path / "c")
    (folder / "kernels" / "attention.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass ModelNew(nn.Module):\n"
        "    def forward(self, q, k, v):\n"
        "        q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()\n"
        "        return torch.nn.functional.scaled_dot_product_attention(q, k, v).float()\n"
    )
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=folder, budget=QUICK))
    assert not verdict.valid
    assert any("incorrect: attention" in check.reason for check in verdict.failures), verdict.failures


def test_every_adapter_hack_is_stopped(tmp_path: Path) -> None:
    """All of them, three at a time on Phase 2's budget, as the Explorer attacks the harness."""
    budget = DOMAIN.manifest.budget.model_copy(update={"run_seconds": 20, "run_disk_mb": 256})

    async def attack(hack, limit: asyncio.Semaphore):  # type: ignore[no-untyped-def]
        async with limit:
            candidate = assemble(hack, DOMAIN, tmp_path / hack.name / "candidate", budget)
            return hack, await evaluate(
                DOMAIN, tmp_path / hack.name / "run", candidate=candidate, budget=budget
            )

    async def attacks():  # type: ignore[no-untyped-def]
        limit = asyncio.Semaphore(3)
        return await asyncio.gather(*(attack(hack, limit) for hack in OWN))

    got_through = []
    for hack, verdict in asyncio.run(attacks()):
        stopped, how = judge(hack, verdict)
        if not stopped:
            got_through.append(f"{hack.name}: {how}")
        elif hack.rejected_by is None and not (
            verdict.valid and verdict.value is not None and verdict.value < 5.0
        ):
            got_through.append(f"{hack.name}: expected an honest grade, got {verdict}")
    assert len(OWN) == 6 and not got_through, got_through


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_gpu_grading_is_valid(tmp_path: Path) -> None:
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c")))
    assert verdict.valid, verdict.failures
    json.dumps(verdict.metrics)
