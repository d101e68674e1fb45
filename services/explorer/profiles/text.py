"""A text corpus: sizes, document lengths, byte and character statistics, and the unigram entropy.

The export holds a `text` column (one row per document) and optionally `document` (its name). The
unigram byte entropy is the bits per byte a model that ignores context would need: any language model
worth training must beat it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from services.explorer.markdown import num, table
from services.explorer.plots import png
from services.explorer.profiles.profile import BadExport, Profile
from shared.domain import Data

__all__ = ["text_profile"]

_TOP_CHARACTERS = 12


def text_profile(frame: pd.DataFrame, data: Data) -> Profile:
    if "text" not in frame.columns or frame.empty:
        raise BadExport(
            f"a text export needs a 'text' column with a row per document "
            f"(columns: {list(frame.columns)[:8]})"
        )
    texts = frame["text"].fillna("").astype(str)
    names = (
        frame["document"].astype(str)
        if "document" in frame.columns
        else pd.Series([f"#{i}" for i in range(len(texts))])
    )
    encoded = [text.encode() for text in texts]
    sizes = np.array([len(raw) for raw in encoded])
    counts = np.bincount(np.frombuffer(b"".join(encoded), dtype=np.uint8), minlength=256)
    total = int(counts.sum())
    entropy = _entropy(counts)
    ascii_share = counts[:128].sum() / total if total else 0.0
    characters = pd.Series(list("".join(texts))).value_counts().head(_TOP_CHARACTERS)
    words = sum(len(text.split()) for text in texts)
    shortest, longest = names.iloc[sizes.argmin()], names.iloc[sizes.argmax()]
    lines = [
        f"{len(texts):,} documents, {total:,} bytes, {words:,} words",
        f"document length: median {np.median(sizes):,.0f} bytes, from {sizes.min():,} ({shortest}) "
        f"to {sizes.max():,} ({longest})",
        f"unigram byte entropy {entropy:.3f} bits per byte: a model must beat this",
        f"{int((counts > 0).sum())} distinct byte values; {ascii_share:.1%} of bytes are ASCII",
    ]
    characters_total = sum(map(len, texts))
    overview = [
        ("documents", f"{len(texts):,}"), ("bytes", f"{total:,}"), ("characters", f"{characters_total:,}"),
        ("words", f"{words:,}"), ("lines", f"{sum(text.count(chr(10)) + 1 for text in texts):,}"),
        ("mean / median document bytes", f"{sizes.mean():,.0f} / {np.median(sizes):,.0f}"),
        ("unigram entropy (bits/byte)", num(entropy, 4)), ("distinct bytes", str(int((counts > 0).sum()))),
        ("ASCII share", f"{ascii_share:.2%}"),
    ]  # fmt: skip
    top = table(
        ("character", "share"),
        [(repr(c), f"{n / max(1, characters_total):.2%}") for c, n in characters.items()],
    )
    documents = table(
        ("document", "bytes"), [(names.iloc[i], f"{sizes[i]:,}") for i in np.argsort(-sizes)[:20]]
    )
    return Profile(
        findings=tuple(lines),
        sections=(("Overview", table(("statistic", "value"), overview)), ("Most common characters", top),
                  ("Largest documents", documents)),
        plots={"document_lengths.png": _lengths(sizes), "byte_frequencies.png": _bytes(counts)},
    )  # fmt: skip


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _lengths(sizes: np.ndarray) -> bytes:
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    ax.hist(sizes, bins=min(40, max(5, len(sizes))), color="tab:blue")
    ax.set_xlabel("bytes per document")
    ax.set_title("Document lengths")
    return png(fig)


def _bytes(counts: np.ndarray) -> bytes:
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.bar(np.arange(256), counts / max(1, counts.sum()), width=1.0, color="tab:orange")
    ax.set_yscale("log")
    ax.set_xlabel("byte value")
    ax.set_title("Byte frequencies")
    return png(fig)
