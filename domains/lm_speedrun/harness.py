"""The lm_speedrun adapter's trusted harness: train the best byte-level LM in a fixed wall-clock budget.

harness.py baselines | export --out F | prepare --workspace W | grade --workspace W --seconds S
(each with an optional --data FILE: a .txt, or a Parquet/CSV table with `text` and `document`).
data.py splits the corpus, scoring.py scores answers, grading.py runs the sandboxed predict dialogue,
ngram.py holds the count-based baselines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import data
import grading
import numpy as np
import scoring
from ngram import tuned, unigram_logprobs

from alphalab.sdk import Adapter, DataError, baseline, main

ADAPTER = Adapter.of(__file__)
HERE = Path(__file__).resolve().parent
SMALL_GPT_FIT_SECONDS = 30.0
PROTOCOL = (
    "predict: one JSON line per request {'window': base64 of W bytes}; answer one line "
    "{'logprobs': base64 of W×256 little-endian float32}, row i = log P(byte i | bytes before i), "
    "row 0 from nothing. Rows must be normalised, causal and the same when a window is asked again; "
    "model.pt (every tensor counted) must stay within param_cap parameters."
)


def _corpus(arguments: argparse.Namespace) -> data.Corpus:
    corpus = data.load(arguments.data)
    if max(len(text) for text in corpus.test.values()) < scoring.WINDOW:
        raise DataError(
            f"{corpus.source}: text: no test document holds {scoring.WINDOW} bytes, the length of a test "
            "window; give longer documents"
        )
    return corpus


def prepare(arguments: argparse.Namespace) -> dict[str, Any]:
    corpus = _corpus(arguments)
    workspace: Path = arguments.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "train.txt").write_bytes(corpus.joined("train"))
    (workspace / "val.txt").write_bytes(corpus.joined("val"))
    meta = {
        "window": scoring.WINDOW,
        "vocab": scoring.VOCAB,
        "param_cap": grading.PARAM_CAP,
        "run_seconds": ADAPTER.budget.run_seconds,
        "train_documents": list(corpus.train),
        "val_documents": list(corpus.val),
        "train_bytes": len(corpus.joined("train")),
        "val_bytes": len(corpus.joined("val")),
        "protocol": PROTOCOL,
    }
    (workspace / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"workspace": str(workspace), "train_bytes": meta["train_bytes"], "val_bytes": meta["val_bytes"]}


def grade_candidate(arguments: argparse.Namespace) -> dict[str, Any]:
    if not arguments.workspace.is_dir():
        raise DataError(f"--workspace: {arguments.workspace} is not a folder")
    return grading.grade(arguments.workspace, _corpus(arguments), arguments.seconds, arguments.memory_mb,
                         ADAPTER.held_out(arguments.data), ADAPTER.entry)  # fmt: skip


def _scored(corpus: data.Corpus, logprobs) -> dict[str, float]:
    names, windows = scoring.test_windows(corpus.test)
    return scoring.summary(np.stack([logprobs(window) for window in windows]), names)


def small_gpt(corpus: data.Corpus, arguments: argparse.Namespace) -> dict[str, Any]:
    """The adapter's candidate with its defaults but SMALL_GPT_FIT_SECONDS of fit: a reference that the
    machine's load moves less than the default's few seconds of training (Phase 2's 20 s set those)."""
    with tempfile.TemporaryDirectory(dir=".") as scratch:
        workspace = Path(scratch) / "workspace"
        prepare(argparse.Namespace(workspace=workspace, data=arguments.data))
        shutil.copy(HERE / ADAPTER.entry, workspace / ADAPTER.entry)
        (workspace / "config.json").write_text(json.dumps({"seed": 0, "fit_seconds": SMALL_GPT_FIT_SECONDS}))
        budget = ADAPTER.budget
        fitted = subprocess.run(
            [sys.executable, ADAPTER.entry, "fit", "--config", "config.json"],
            cwd=workspace, capture_output=True, text=True, timeout=budget.run_seconds,
        )  # fmt: skip
        if fitted.returncode != 0:
            raise RuntimeError(f"baseline small-gpt: fit failed: {fitted.stderr[-1500:]}")
        result = grading.grade(workspace, corpus, budget.run_seconds, budget.run_memory_mb,
                               ADAPTER.held_out(arguments.data), ADAPTER.entry)  # fmt: skip
    if not result["valid"]:
        raise RuntimeError(f"baseline small-gpt: {result['failures']}")
    described = f"the adapter's 2-layer byte GPT, its defaults but {SMALL_GPT_FIT_SECONDS:g} s of fit"
    return baseline("small-gpt", result["value"], result["metrics"], described)


def baselines(arguments: argparse.Namespace) -> dict[str, Any]:
    corpus = _corpus(arguments)
    train = corpus.joined("train")
    kn = tuned(train, scoring.test_windows(corpus.val)[1])
    unigram = _scored(corpus, lambda window: unigram_logprobs(train, window))
    ngram = _scored(corpus, kn.logprobs)
    counted = (
        f"interpolated Kneser-Ney, order {kn.order}, discount {kn.discount} (both picked on the validation "
        "plays), context inside the window"
    )
    return {
        "baselines": [
            baseline("unigram", unigram["bpb"], unigram, "byte frequencies of the training text, add-one"),
            baseline("ngram", ngram["bpb"], ngram, counted),
            small_gpt(corpus, arguments),
        ]
    }


def export(arguments: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet

    corpus = _corpus(arguments)
    rows = [
        {"document": name, "text": text.decode("utf-8", errors="replace")}
        for name, text in corpus.train.items()
    ]
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.parquet.write_table(pa.Table.from_pylist(rows), arguments.out)
    return {"out": str(arguments.out), "documents": len(rows)}


if __name__ == "__main__":
    sys.exit(main(ADAPTER, baselines=baselines, export=export, prepare=prepare, grade=grade_candidate))
