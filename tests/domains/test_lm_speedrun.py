"""The lm_speedrun adapter end to end: its data split, scoring, baselines, real sandboxed candidates and
its own hacks (each through the real grading flow)."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from alphalab.sdk import DataError, StepFailed
from hacks import Hack, assemble, judge, suite
from shared.domain import load_domain
from shared.grading import evaluate

ADAPTER = Path(__file__).resolve().parents[2] / "domains" / "lm_speedrun"
DOMAIN = load_domain(str(ADAPTER))
OWN = [hack for hack in suite(DOMAIN) if hack.source.parent == ADAPTER / "hacks"]
HARNESS = [sys.executable, str(ADAPTER / "harness.py")]
PHASE2 = DOMAIN.manifest.budget.model_copy(update={"run_seconds": 20, "run_disk_mb": 256})


def _adapter_modules() -> list[ModuleType]:
    """The adapter's own modules, imported as its harness imports them (its folder first on sys.path);
    a same-named module of another adapter cached earlier is dropped first."""
    sys.path.insert(0, str(ADAPTER))
    names = ("scoring", "data", "ngram", "grading")
    for name in names:
        cached = sys.modules.get(name)
        if cached is not None and Path(str(cached.__file__)).parent != ADAPTER:
            del sys.modules[name]
    return [importlib.import_module(name) for name in names]


scoring, data, ngram, grading = _adapter_modules()

HAMLET_LINE = b"To be, or not to be"


def _candidate(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(ADAPTER / "candidate.py", folder / "candidate.py")
    return folder


# --- data -----------------------------------------------------------------------------------------


def test_prepare_writes_no_test_play_and_export_fits_the_text_profile(tmp_path: Path) -> None:
    subprocess.run([*HARNESS, "prepare", "--workspace", str(tmp_path / "w")], check=True, timeout=120)
    written = {p.name for p in (tmp_path / "w").iterdir()}
    assert written == {"train.txt", "val.txt", "meta.json"}
    meta = json.loads((tmp_path / "w" / "meta.json").read_text())
    assert meta["window"] == 256 and meta["vocab"] == 256 and meta["param_cap"] > 1_000_000
    assert not set(data.TEST_PLAYS) & set(meta["train_documents"] + meta["val_documents"])
    assert len(meta["train_documents"]) == 33 and meta["val_documents"] == list(data.VAL_PLAYS)
    for name in ("train.txt", "val.txt"):
        text = (tmp_path / "w" / name).read_bytes()
        assert HAMLET_LINE not in text and b"# Hamlet" not in text and b"# The Tempest" not in text
    assert b"# Macbeth" in (tmp_path / "w" / "val.txt").read_bytes()

    subprocess.run([*HARNESS, "export", "--out", str(tmp_path / "t.parquet")], check=True, timeout=120)
    from services.explorer.profiles.text import text_profile

    table = pd.read_parquet(tmp_path / "t.parquet")
    assert list(table.columns) == ["document", "text"] and len(table) == 33
    assert "hamlet" not in set(table["document"])
    profile = text_profile(table, DOMAIN.manifest.data)
    assert any("unigram byte entropy" in line for line in profile.findings)


def test_the_split_is_by_play_and_refuses_missing_plays(monkeypatch) -> None:
    corpus = data.plays()
    assert set(corpus.test) == set(data.TEST_PLAYS) and set(corpus.val) == set(data.VAL_PLAYS)
    assert len(corpus.train) + len(corpus.val) + len(corpus.test) == 38
    monkeypatch.setattr(data, "TEST_PLAYS", ("hamlet", "no-such-play"))
    with pytest.raises(DataError, match="no-such-play"):
        data.plays()


def test_a_users_own_text_and_tables_split_by_document(tmp_path: Path) -> None:
    txt = tmp_path / "corpus.txt"
    txt.write_text("".join(f"line {i} of a long story about the sea and the wind\n" for i in range(4000)))
    corpus = data.load(txt)
    assert len(corpus.train) == 16 and list(corpus.val) == ["part-17", "part-18"]
    assert list(corpus.test) == ["part-19", "part-20"]
    assert b"".join([*corpus.train.values(), *corpus.val.values(), *corpus.test.values()]) == txt.read_bytes()

    rows = [{"document": f"doc{d}", "text": f"paragraph {p} of document {d}. " * 40} for d in range(12)
            for p in range(3)]  # fmt: skip
    table = tmp_path / "docs.parquet"
    pd.DataFrame(rows).to_parquet(table)
    corpus = data.load(table)
    assert list(corpus.test) == ["doc10", "doc11"] and list(corpus.val) == ["doc8", "doc9"]
    assert corpus.test["doc11"].count(b"paragraph") == 120  # a document's rows are joined, in order
    csv = tmp_path / "docs.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert data.load(csv).test == corpus.test


def test_bad_files_are_refused_naming_file_and_field(tmp_path: Path) -> None:
    no_document = tmp_path / "a.parquet"
    pd.DataFrame({"text": ["x" * 9000] * 5}).to_parquet(no_document)
    with pytest.raises(DataError, match=r"a\.parquet: document: no such column"):
        data.load(no_document)
    numbers = tmp_path / "b.csv"
    pd.DataFrame({"text": ["fine " * 2000, None, "x"], "document": ["a", "b", "c"]}).to_csv(
        numbers, index=False
    )
    with pytest.raises(DataError, match=r"b\.csv: text: row 1 is empty or not text"):
        data.load(numbers)
    tiny = tmp_path / "c.txt"
    tiny.write_text("too short\n" * 30)
    with pytest.raises(DataError, match=r"c\.txt: text: the train split holds"):
        data.load(tiny)
    binary = tmp_path / "d.txt"
    binary.write_bytes(b"\xff\xfe" * 10000)
    with pytest.raises(DataError, match=r"d\.txt: text: not UTF-8"):
        data.load(binary)
    with pytest.raises(DataError, match=r"e\.json: not a \.txt"):
        data.load(tmp_path / "e.json")
    argv = [*HARNESS, "prepare", "--workspace", str(tmp_path / "w"), "--data", str(no_document)]
    outcome = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert outcome.returncode == 2 and "a.parquet: document" in outcome.stderr


def test_held_out_is_exactly_the_test_plays() -> None:
    paths = DOMAIN.held_out()
    assert sorted(path.stem for path in paths) == sorted(data.TEST_PLAYS)
    assert all(path.is_file() for path in paths)
    assert HAMLET_LINE in next(path for path in paths if path.stem == "hamlet").read_bytes()


# --- scoring --------------------------------------------------------------------------------------


def _answer(rows: np.ndarray) -> dict:
    import base64

    return {"logprobs": base64.b64encode(rows.astype("<f4").tobytes()).decode()}


def test_bpb_of_known_distributions() -> None:
    window = bytes(range(256))
    uniform = np.full((256, 256), -np.log(256.0))
    assert scoring.bpb(scoring.target_logprobs(uniform, window)) == pytest.approx(8.0)
    half = np.full((256, 256), np.log(0.5 / 255))
    half[np.arange(256), np.arange(256)] = np.log(0.5)
    assert scoring.bpb(scoring.target_logprobs(half, window)) == pytest.approx(1.0)
    decoded = scoring.decode_answer(_answer(half), 256, "a")
    assert scoring.normalisation_error(decoded) < 1e-5


def test_answers_that_are_malformed_unnormalised_or_look_ahead_are_refused() -> None:
    rows = np.full((256, 256), -np.log(256.0))
    with pytest.raises(StepFailed, match="^malformed"):
        scoring.decode_answer({"logprobs": "not base64!"}, 256, "a")
    with pytest.raises(StepFailed, match="^malformed"):
        scoring.decode_answer({"forecast": []}, 256, "a")
    with pytest.raises(StepFailed, match="^wrong shape"):
        scoring.decode_answer(_answer(rows[:10]), 256, "a")
    nan = rows.copy()
    nan[3, 4] = np.nan
    with pytest.raises(StepFailed, match="^not finite"):
        scoring.decode_answer(_answer(nan), 256, "a")
    scoring.check_normalised(rows, "a")
    doubled = rows + np.log(2)
    with pytest.raises(StepFailed, match="^unnormalised"):
        scoring.check_normalised(doubled, "a")
    changed = rows.copy()
    changed[40:] += 0.01  # rows after the probed position may move
    scoring.check_causal(rows, changed, 39, "a")
    with pytest.raises(StepFailed, match="^non-causal"):
        scoring.check_causal(rows, changed, 40, "a")
    scoring.check_repeat(rows, rows.copy(), "a")
    with pytest.raises(StepFailed, match="^training during scoring"):
        scoring.check_repeat(rows, changed, "a")


def test_test_windows_are_fixed_probes_read_like_text_and_repeats_come_late() -> None:
    corpus = data.plays()
    names, windows = scoring.test_windows(corpus.test)
    assert (names, windows) == scoring.test_windows(corpus.test)
    assert len(windows) == scoring.WINDOWS and all(len(w) == scoring.WINDOW for w in windows)
    assert all(w in corpus.test[name] for name, w in zip(names, windows, strict=True))
    text = corpus.joined("test")
    requests = grading.plan(windows, text)
    assert sorted(r[1] for r in requests if r[0] == "score") == list(range(len(windows)))
    probes = [r for r in requests if r[0] == "probe"]
    assert len(probes) == grading.PROBES
    for _, i, kept, probe in probes:
        assert len(probe) == len(windows[i]) and probe[:kept] == windows[i][:kept]
        assert probe[kept] != windows[i][kept] and probe[kept:] in text  # test text, not noise
    answered = {i: None for i in reversed(range(len(windows)))}
    again = grading.repeats(answered)
    assert len(set(again)) == grading.REPEATS and set(again) <= set(range(grading.REPEAT_SPAN))


def test_ngram_is_normalised_and_beats_unigram() -> None:
    corpus = data.plays()
    train = corpus.joined("train")
    kn = ngram.KneserNey(train[:400_000])
    for context in (b"To be, or not t", b"zq\x00", b""):
        total = sum(np.exp(kn.logprobs(context + bytes([b]))[-1]) for b in range(256))
        assert total == pytest.approx(1.0, abs=1e-9)
    names, windows = scoring.test_windows(corpus.test, count=16)
    unigram = scoring.bpb(np.concatenate([ngram.unigram_logprobs(train, w) for w in windows]))
    assert 4.4 < unigram < 5.2
    assert scoring.bpb(np.concatenate([kn.logprobs(w) for w in windows])) < unigram - 1.5


def test_the_cap_counts_nested_tensors_and_measures_a_deep_workspace(tmp_path: Path) -> None:
    import torch

    torch.save({"config": {"n": 3}, "state_dict": {"w": torch.zeros(10, 10)}, "more": [(torch.ones(7),)]},
               tmp_path / "model.pt")  # fmt: skip
    assert grading.count_parameters(tmp_path / "model.pt") == 107
    assert grading.check_cap(tmp_path, 0, 200) == 107
    with pytest.raises(StepFailed, match="^parameter cap: model.pt holds 107 parameters"):
        grading.check_cap(tmp_path, 0, 100)
    deep = tmp_path / "deep"
    try:
        for _ in range(1500):  # deeper than a recursive walk (os.walk, shutil.rmtree) can follow
            deep = deep / "d"
            deep.mkdir(parents=True)
        with open(deep / "weights.bin", "wb") as hidden:
            hidden.truncate(grading.CODE_SLACK_BYTES + 1000)  # sparse: its apparent size counts
        assert grading.workspace_bytes(tmp_path) > grading.CODE_SLACK_BYTES + 1000
        with pytest.raises(StepFailed, match="^parameter cap: the workspace holds"):
            grading.check_cap(tmp_path, 0, 10)
    finally:
        subprocess.run(["rm", "-rf", str(tmp_path / "deep")], check=True, timeout=60)


def test_test_documents_shorter_than_a_window_are_refused(tmp_path: Path) -> None:
    rows = [{"document": f"doc{d}", "text": ("long text. " * 800 if d < 8 else "short")} for d in range(10)]
    pd.DataFrame(rows).to_parquet(tmp_path / "short.parquet")
    argv = [
        *HARNESS,
        "prepare",
        "--workspace",
        str(tmp_path / "w"),
        "--data",
        str(tmp_path / "short.parquet"),
    ]
    outcome = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert outcome.returncode == 2, outcome.stderr
    assert "short.parquet: text:" in outcome.stderr


# --- real candidates, sandboxed -------------------------------------------------------------------


def test_default_candidate_is_valid_within_phase_2s_20_seconds(tmp_path: Path) -> None:
    verdict = asyncio.run(
        evaluate(DOMAIN, tmp_path / "run", candidate=_candidate(tmp_path / "c"), budget=PHASE2)
    )
    assert verdict.valid, verdict.failures
    # Uniform is 8 bpb, unigram 4.78. Training stops 9 s into the fit whatever the load, so the score
    # depends on it: 3.5-3.9 measured on a lightly loaded 2-core machine, 4.8 and worse under heavy load.
    assert verdict.value is not None and verdict.value < 6.0, verdict.log_tail
    for name in ("bpb", *DOMAIN.manifest.secondary_metrics, "bpb_hamlet"):
        assert name in verdict.metrics
    assert verdict.metrics["parameters"] < 4_000_000


@pytest.mark.parametrize("hack", OWN, ids=[hack.name for hack in OWN])
def test_each_adapter_hack_is_stopped(hack: Hack, tmp_path: Path) -> None:
    candidate = assemble(hack, DOMAIN, tmp_path / "candidate", PHASE2)
    verdict = asyncio.run(evaluate(DOMAIN, tmp_path / "run", candidate=candidate, budget=PHASE2))
    stopped, how = judge(hack, verdict)
    assert stopped, how
    if hack.rejected_by is None:
        assert verdict.valid and verdict.value is not None and verdict.value > 2.0, verdict


def test_the_known_hack_suite_covers_this_adapter() -> None:
    names = {hack.name: hack.rejected_by for hack in suite(DOMAIN)}
    assert names["look-ahead"] == "non-causal" and names["unnormalised"] == "unnormalised"
    assert names["train-while-scoring"] == "training during scoring"
    assert names["exceed-parameter-cap"] == names["weights-beside-the-model"] == "parameter cap"
    assert names["read-test-plays"] is None and "search-disk-for-targets" in names


def test_baselines_are_the_manifests_and_rank_as_expected() -> None:
    outcome = subprocess.run([*HARNESS, "baselines"], capture_output=True, text=True, timeout=300, check=True)
    printed = {row["name"]: row for row in json.loads(outcome.stdout.splitlines()[-1])["baselines"]}
    assert set(printed) == {baseline.name for baseline in DOMAIN.manifest.baselines}
    for row in printed.values():
        assert row["metrics"]["bpb"] == row["value"]
    assert 4.5 < printed["unigram"]["value"] < 5.0 and printed["ngram"]["value"] < 2.3
    assert printed["small-gpt"]["value"] < printed["unigram"]["value"] - 0.5  # 30 s of fit
