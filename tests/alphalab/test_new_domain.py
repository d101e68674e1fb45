"""`alphalab new-domain` writes an adapter that works as it is: it loads, grades, and is profiled aptly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from services.explorer.profiles import profile
from shared.domain import load_domain


def _alphalab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("alphalab")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_a_tabular_adapter_grades_its_own_candidate_above_the_majority_baseline(tmp_path: Path) -> None:
    made = _alphalab("new-domain", "clinic", "--kind", "tabular", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    adapter = load_domain(str(tmp_path / "clinic"))
    assert adapter.name == "clinic" and adapter.manifest.data.kind == "tabular"
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    (candidate / "candidate.py").write_text((adapter.root / "candidate.py").read_text())
    graded = _alphalab("evaluate", "--domain", str(adapter.root), str(candidate), "--json", cwd=tmp_path)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    verdict = json.loads(graded.stdout)
    harness = [sys.executable, str(adapter.root / "harness.py")]
    baselines = json.loads(subprocess.run([*harness, "baselines"], capture_output=True, check=True).stdout)
    scores = {b["name"]: b["value"] for b in baselines["baselines"]}
    assert set(scores) == {b.name for b in adapter.manifest.baselines}
    assert verdict["valid"] and verdict["value"] == verdict["metrics"]["accuracy"] > scores["majority"] + 0.3
    assert set(adapter.manifest.secondary_metrics) <= set(verdict["metrics"])

    exported = tmp_path / "train.parquet"
    subprocess.run([*harness, "export", "--out", str(exported)], capture_output=True, check=True)
    described = profile(pd.read_parquet(exported), adapter.manifest.data)
    assert described.findings[0] == "900 rows x 8 feature columns (8 numeric, 0 categorical or text)"
    assert any(line.startswith("target label: 3 classes") for line in described.findings)
    assert not any("sensor" in line or "daily" in line for line in described.findings)


def test_a_bad_name_or_an_existing_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    for name, message in (("no/slash", "must be 1-64 letters"), ("taken", "already exists")):
        refused = _alphalab("new-domain", name, "--kind", "tabular", cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr


def test_a_tabular_adapter_runs_a_campaign_whose_data_report_fits_its_data(tmp_path: Path) -> None:
    """The newcomer's path end to end: new-domain, then `run` on it, then the report read as they would."""
    assert _alphalab("new-domain", "clinic", "--kind", "tabular", cwd=tmp_path).returncode == 0
    home = tmp_path / "lab"
    ran = _alphalab(
        "run", "--domain", "clinic", "--experiments", "2", "--workers", "1", "--home", str(home), cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "Best result against every baseline" in ran.stdout and "majority" in ran.stdout
    (report_file,) = (home / "campaigns").glob("*/report.md")
    report = report_file.read_text()
    assert "900 rows x 8 feature columns" in report and "target label: 3 classes" in report
    for misfit in ("sensor", "daily cycle", "timestamp"):
        assert misfit not in report.lower(), misfit


def test_every_other_kind_writes_an_adapter_that_loads_and_prepares_a_workspace(tmp_path: Path) -> None:
    for kind, name in (("text", "verse"), ("kernels", "fast"), ("timeseries", "meters")):
        made = _alphalab("new-domain", name, "--kind", kind, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        adapter = load_domain(str(tmp_path / name))
        assert adapter.name == name and adapter.manifest.data.kind == kind
        workspace = tmp_path / f"{name}-workspace"
        harness = [sys.executable, str(adapter.root / "harness.py"), "prepare", "--workspace", str(workspace)]
        prepared = subprocess.run(harness, capture_output=True, text=True, timeout=120)
        assert prepared.returncode == 0, prepared.stderr
        assert any(workspace.iterdir())
