"""Grading traffic candidates end to end through the CLI contract: real fits, real sandboxed predicts."""

from __future__ import annotations

import json
import resource
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from domains.traffic.data import load_series
from domains.traffic.families import fit_mlp
from shared.domain import load_domain
from shared.grading import candidate_limits
from shared.sandbox import Access, Limits, run
from tests.domains.traffic_cli import TRAFFIC, harness_json

DOMAIN = load_domain("traffic")
SECONDARY = {"mae", "rmse", "mape", "mae_h1", "mae_h2", "mae_h3", "mae_h4"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared workspace (train/val splits), copied by each test that needs a fresh one."""
    workspace = tmp_path_factory.mktemp("prepared")
    harness_json("prepare", "--workspace", str(workspace))
    return workspace


@pytest.fixture(scope="module")
def last_value() -> float:
    rows = harness_json("baselines")["baselines"]
    return next(row["value"] for row in rows if row["name"] == "last-value")


def _workspace(prepared: Path, tmp_path: Path, candidate: str | None = None) -> Path:
    """A run's workspace as the worker makes it: the splits, plus the adapter's or a given candidate."""
    workspace = Path(shutil.copytree(prepared, tmp_path / "run"))
    if candidate is None:
        for relative in DOMAIN.candidate_files():
            shutil.copy(TRAFFIC / relative, workspace / relative)
    else:
        (workspace / "candidate.py").write_text(textwrap.dedent(candidate))
    return workspace


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _fit(workspace: Path, config: dict[str, Any]) -> str:
    """Fit as the worker does: sandboxed, under the manifest's budget; returns the summary it printed."""
    (workspace / "config.json").write_text(json.dumps(config))
    limits = candidate_limits(DOMAIN.manifest.budget)
    access = Access(workspace, hidden=DOMAIN.held_out())
    outcome = run(
        DOMAIN.candidate_argv("fit", "--config", "config.json"), cwd=workspace, limits=limits, access=access
    )
    assert outcome.returncode == 0, outcome.stderr_tail
    return outcome.stdout_tail


def _grade(workspace: Path, *extra: str, sandbox: str | None = None) -> dict[str, Any]:
    return harness_json("grade", "--workspace", str(workspace), *extra, sandbox=sandbox)


# Between them, every choice of the feature parameters: level and residual targets, each profile,
# seasonal reading and calendar.
FAMILIES = {
    "ridge_ar": {
        "model": "ridge_ar",
        "lags": 24,
        "target": "level",
        "profile": "day",
        "seasonal": "week",
        "calendar": "onehot",
        "ridge_alpha": 1.0,
        "seed": 0,
    },
    "gbdt": {
        "model": "gbdt",
        "lags": 24,
        "target": "profile_residual",
        "profile": "week",
        "seasonal": "day",
        "calendar": "cyclic",
        "gbdt_learning_rate": 0.1,
        "gbdt_max_iter": 100,
        "seed": 0,
    },
    "mlp": {"model": "mlp", "profile": "blend", "mlp_hidden": 64, "mlp_epochs": 20, "seed": 0},
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_fits_and_grades_in_under_20_cpu_seconds_and_beats_last_value(
    prepared: Path, tmp_path: Path, last_value: float, family: str
) -> None:
    """Fit plus grade stays under 20 CPU seconds (the demo's pace) and scores well below persistence."""
    workspace = _workspace(prepared, tmp_path)
    before = _children_cpu_seconds()
    summary = _fit(workspace, FAMILIES[family])
    verdict = _grade(workspace)
    assert _children_cpu_seconds() - before < 20
    assert f"model: {family}" in summary and "val_mae: " in summary
    assert verdict["valid"] and verdict["failures"] == []
    assert set(verdict["metrics"]) == SECONDARY and verdict["value"] == verdict["metrics"]["mae"]
    assert verdict["value"] < 0.9 * last_value


def test_mlp_training_is_deterministic_for_a_seed() -> None:
    """Two mlp fits with one seed give identical weights; another seed gives different ones."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 12))
    target = features[:, :4] @ rng.normal(size=(4, 4)) + rng.normal(size=(3000, 4))
    scale = rng.uniform(1, 50, size=3000)
    rows = (features[:2500], target[:2500], scale[:2500]), (features[2500:], target[2500:], scale[2500:])
    config = {"mlp_hidden": 16, "mlp_layers": 2, "mlp_lr": 1e-3, "mlp_epochs": 3, "mlp_weight_decay": 1e-4}
    fits = [fit_mlp(*rows, {**config, "seed": seed}) for seed in (7, 7, 8)]
    weights = [np.concatenate([array.ravel() for layer in fit.layers for array in layer]) for fit in fits]
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


def test_an_unknown_config_key_fails_the_fit(prepared: Path, tmp_path: Path) -> None:
    """A misspelt hyperparameter stops the fit instead of silently using a default."""
    workspace = _workspace(prepared, tmp_path)
    (workspace / "config.json").write_text(json.dumps({"model": "ridge_ar", "ridge_alpah": 3.0}))
    outcome = run(
        DOMAIN.candidate_argv("fit", "--config", "config.json"), cwd=workspace, limits=Limits(60), access=None
    )
    assert outcome.returncode != 0 and "ridge_alpah" in outcome.stderr_tail


# Forecasts zero (one cell a hair off in the first, so the answers are not constant) and logs what it
# saw into its workspace: graded with the sandbox off, since a sandboxed predict step cannot write there.
SPY = """
import json, sys
with open("requests.log", "w") as log:
    for count, line in enumerate(sys.stdin):
        request = json.loads(line)
        history = request["history"]
        seen = {"origin": request["origin"], "rows": len(history), "last": history[-1]}
        log.write(json.dumps(seen) + "\\n")
        log.flush()
        forecast = [[0] * len(history[-1]) for _ in range(4)]
        forecast[0][0] = 1e-9 if count == 0 else 0
        print(json.dumps({"forecast": forecast}), flush=True)
"""


def test_the_candidate_sees_only_readings_up_to_each_origin(prepared: Path, tmp_path: Path) -> None:
    """Requests come once an hour from the last validation step, each ending at its origin; targets lie
    after it."""
    workspace = _workspace(prepared, tmp_path, SPY)
    verdict = _grade(workspace, sandbox="none")
    series = load_series()
    index = {str(stamp): row for row, stamp in enumerate(series.timestamps)}
    requests = [json.loads(line) for line in (workspace / "requests.log").read_text().splitlines()]
    origins = np.array([index[request["origin"]] for request in requests])
    assert origins[0] == 1995 and (np.diff(origins) > 0).all() and origins[-1] + 4 < len(series.timestamps)
    np.testing.assert_array_equal((origins - 1995) // 4, np.arange(len(origins)))
    for request, origin in zip(requests, origins, strict=True):
        last = np.array(request["last"], dtype=float)
        np.testing.assert_array_equal(last, series.values[origin])
        assert request["rows"] == 7 * 96
    truth = series.values[origins[:, None] + np.arange(1, 5)]
    assert verdict["valid"] and verdict["origins"] == len(requests)
    assert verdict["value"] == pytest.approx(np.nanmean(np.abs(truth)))


ANSWER_EACH_REQUEST = """
import json, sys
for line in sys.stdin:
    width = len(json.loads(line)["history"][-1])
    print({answer}, flush=True)
    {then}
"""

BAD_CANDIDATES = {
    "crashes": (
        "import sys\nsys.stderr.write('boom: no model here')\nsys.exit(3)",
        "crashed: candidate exited with code 3",
    ),
    "sleeps past the limit": ("import time\ntime.sleep(60)", "timed out: 0 of 125 forecasts within 3 s"),
    "answers NaN": (
        ANSWER_EACH_REQUEST.format(answer='json.dumps({"forecast": [[float("nan")] * width] * 4})', then=""),
        "not finite: forecast 1 of 125",
    ),
    "answers null": (
        ANSWER_EACH_REQUEST.format(answer='json.dumps({"forecast": [[None] * width] * 4})', then=""),
        "not finite",
    ),
    "answers the wrong shape": (
        ANSWER_EACH_REQUEST.format(answer='json.dumps({"forecast": [[0] * width] * 3})', then=""),
        "wrong shape: forecast 1 of 125 is (3, 22); expected (4, 22)",
    ),
    "prints a log line": (
        ANSWER_EACH_REQUEST.format(answer='"loaded model"', then=""),
        "malformed: forecast 1 of 125",
    ),
    "answers the same whatever the history": (
        ANSWER_EACH_REQUEST.format(answer='json.dumps({"forecast": [[7] * width] * 4})', then=""),
        "constant: all 125 forecasts are identical",
    ),
    "stops after one answer": (
        ANSWER_EACH_REQUEST.format(answer='json.dumps({"forecast": [[0] * width] * 4})', then="break"),
        "stopped early: candidate exited with code 0 after 1 of 125 forecasts",
    ),
}


@pytest.mark.parametrize("case", BAD_CANDIDATES, ids=list(BAD_CANDIDATES))
def test_bad_candidates_are_graded_invalid_with_the_failure_named(
    prepared: Path, tmp_path: Path, case: str
) -> None:
    """A candidate that crashes, hangs or answers badly gets no value, and the failure says why."""
    source, expected = BAD_CANDIDATES[case]
    verdict = _grade(_workspace(prepared, tmp_path, source), "--seconds", "3")
    assert verdict["valid"] is False and verdict["value"] is None and verdict["metrics"] == {}
    assert len(verdict["failures"]) == 1 and expected in verdict["failures"][0]
    assert verdict["predict_seconds"] < 10


def test_a_crash_report_carries_the_candidates_stderr(prepared: Path, tmp_path: Path) -> None:
    """The failure of a crashed candidate ends with what it wrote to stderr, for the run's log."""
    source = BAD_CANDIDATES["crashes"][0]
    verdict = _grade(_workspace(prepared, tmp_path, source))
    assert verdict["failures"][0].endswith("stderr: boom: no model here")
