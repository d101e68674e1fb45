"""The explorer profiles data of every kind a manifest may declare, by what the data really holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.explorer.document import render
from services.explorer.explore import analyse
from services.explorer.profiles import profile
from services.explorer.profiles.profile import BadExport
from shared.domain import Data
from shared.events import BaselineEvaluated, CampaignStarted

PNG = b"\x89PNG\r\n\x1a\n"
CAMPAIGN = CampaignStarted(domain="toy", objective="predict", metric="accuracy", direction="maximize")


def _patients(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A medical-looking table: the label depends on age strongly, on the noise column not at all."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, rows)
    frame = pd.DataFrame({
        "age": age,
        "noise": rng.normal(size=rows),
        "ward": rng.choice(["a", "b", "c"], rows),
        "constant": np.ones(rows),
        "outcome": (age + rng.normal(0, 5, rows) > 50).astype(int),
    })  # fmt: skip
    frame.loc[:79, "noise"] = np.nan
    return frame


def test_a_tabular_profile_speaks_of_columns_and_the_target_not_sensors() -> None:
    described = profile(_patients(), Data(kind="tabular", target="outcome"))
    text = "\n".join(described.findings)
    assert described.findings[0] == "400 rows x 4 feature columns (3 numeric, 1 categorical or text)"
    assert "target outcome: 2 classes" in text
    assert "most informative columns: age (eta = +0.8" in text  # age explains the classes, noise does not
    assert "columns miss >5% (worst: noise at 20.0%)" in text
    assert "1 constant columns carry no information (e.g. constant)" in text
    assert "sensor" not in text and "daily" not in text
    assert set(described.plots) == {"distributions.png", "target.png", "association.png"}
    assert all(png.startswith(PNG) for png in described.plots.values())


def test_a_numeric_target_is_correlated_and_a_missing_one_is_named() -> None:
    frame = _patients()
    frame["score"] = 2.0 * frame["age"] + np.random.default_rng(1).normal(0, 1, len(frame))
    described = profile(frame.drop(columns="outcome"), Data(kind="tabular", target="score"))
    assert any(line.startswith("most informative columns: age (r = +1.00") for line in described.findings)
    with pytest.raises(BadExport, match=r"\[data\].target: the exported table has no column 'label'"):
        profile(frame, Data(kind="tabular", target="label"))


def test_a_text_profile_measures_documents_bytes_and_entropy() -> None:
    frame = pd.DataFrame({"document": ["short", "long"], "text": ["abab", "ab" * 50 + "é"]})
    described = profile(frame, Data(kind="text"))
    assert described.findings[0] == "2 documents, 106 bytes, 2 words"
    assert "from 4 (short) to 102 (long)" in described.findings[1]
    # 'a' and 'b' 52 times each, and the two bytes of 'é': entropy just above one bit per byte.
    entropy = float(described.findings[2].split()[3])
    assert 1.0 < entropy < 1.3
    assert (
        "3 distinct byte values" not in described.findings[3]
        and "98.1% of bytes are ASCII" in described.findings[3]
    )
    with pytest.raises(BadExport, match="needs a 'text' column"):
        profile(pd.DataFrame({"body": ["x"]}), Data(kind="text"))


def test_a_kernels_profile_lists_the_tasks_and_their_reference_timings() -> None:
    frame = pd.DataFrame({
        "task": ["softmax", "matmul_bias_relu", "gelu"],
        "inputs": ["(64, 512)", "(128, 256) x (256, 256)", "(4096,)"],
        "reference_ms": [0.4, 2.5, 0.05],
    })  # fmt: skip
    described = profile(frame, Data(kind="kernels"))
    assert described.findings[0] == "3 tasks: softmax, matmul_bias_relu, gelu"
    assert described.findings[1].startswith(
        "reference_ms: slowest matmul_bias_relu (2.5), fastest gelu (0.05)"
    )
    assert "| softmax | (64, 512) | 0.4 |" in described.sections[0][1]
    assert described.plots["task_timings.png"].startswith(PNG)


def test_the_report_of_any_kind_holds_findings_baselines_and_plots() -> None:
    baselines = [BaselineEvaluated(name="majority", value=0.55, metrics={"accuracy": 0.55})]
    exploration = analyse(CAMPAIGN, _patients(), baselines, Data(kind="tabular", target="outcome"))
    assert exploration.findings[-1] == "baseline to beat: majority with accuracy = 0.55"
    described = profile(_patients(), Data(kind="tabular", target="outcome"))
    report = render(CAMPAIGN, described, described.findings, baselines, described.plots)
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Findings",
        "## Columns",
        "## Baselines",
        "## Association with outcome",
        "## Plots",
    ]
    assert (
        "| baseline | accuracy |\n" in report
        and "| majority | 0.55 |\n" in report
        and "![target.png](target.png)" in report
    )
