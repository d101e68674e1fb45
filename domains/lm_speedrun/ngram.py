"""The count-based baselines, numpy only: add-one unigram and an interpolated Kneser-Ney n-gram over bytes.

The n-gram's order and discount are picked on validation windows (`tuned`), never on the test's.
Both are scored exactly as a candidate is: on the same test windows, each byte predicted only from the
bytes before it inside its window (the first from nothing), through `scoring.bpb`.
"""

from __future__ import annotations

import numpy as np
from scoring import VOCAB, bpb

ORDER = 6
DISCOUNT = 0.9
ORDERS = (3, 4, 5, 6, 7, 8)  # an 8-byte n-gram fills an int64 key exactly: no higher
DISCOUNTS = (0.6, 0.75, 0.9, 0.95)


def unigram_logprobs(train: bytes, window: bytes) -> np.ndarray:
    """log P(byte) with add-one counts of the training bytes, for each byte of the window."""
    counts = np.bincount(np.frombuffer(train, dtype=np.uint8), minlength=VOCAB) + 1.0
    return np.log(counts / counts.sum())[np.frombuffer(window, dtype=np.uint8)]


def _grams(data: np.ndarray, n: int) -> np.ndarray:
    """Every n-gram of `data` as one int64, its oldest byte the most significant."""
    keys = np.zeros(len(data) - n + 1, dtype=np.int64)
    for i in range(n):
        keys = keys * VOCAB + data[i : len(data) - n + 1 + i]
    return keys


class _Table:
    """Counts of n-grams (`keys`, `values`) and, per context, their total and number of distinct bytes."""

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys, self.values = keys, values.astype(np.float64)
        contexts, inverse = np.unique(keys // VOCAB, return_inverse=True)
        self.contexts = contexts
        self.totals = np.bincount(inverse, weights=self.values)
        self.types = np.bincount(inverse, weights=(self.values > 0).astype(np.float64))

    @staticmethod
    def _find(sorted_keys: np.ndarray, queries: np.ndarray, values: np.ndarray) -> np.ndarray:
        where = np.clip(np.searchsorted(sorted_keys, queries), 0, max(0, len(sorted_keys) - 1))
        hit = sorted_keys[where] == queries if len(sorted_keys) else np.zeros(len(queries), bool)
        return np.where(hit, values[where] if len(values) else 0.0, 0.0)

    def lookup(self, grams: np.ndarray):
        count = self._find(self.keys, grams, self.values)
        total = self._find(self.contexts, grams // VOCAB, self.totals)
        types = self._find(self.contexts, grams // VOCAB, self.types)
        return count, total, types


class KneserNey:
    """Interpolated Kneser-Ney of order ORDER: raw counts at the top order, continuation counts (the
    number of distinct bytes seen before an n-gram) below it, a uniform distribution at the bottom."""

    def __init__(self, train: bytes, order: int = ORDER, discount: float = DISCOUNT) -> None:
        data = np.frombuffer(train, dtype=np.uint8).astype(np.int64)
        self.order, self.discount = order, discount
        self.tables: dict[int, _Table] = {}
        keys, counts = np.unique(_grams(data, order), return_counts=True)
        self.tables[order] = _Table(keys, counts)
        for n in range(order - 1, 0, -1):
            above = self.tables[n + 1].keys  # distinct (n+1)-grams: each adds one to its suffix n-gram
            suffixes, continuation = np.unique(above % VOCAB**n, return_counts=True)
            self.tables[n] = _Table(suffixes, continuation)

    def logprobs(self, window: bytes) -> np.ndarray:
        """log P(x_i | up to ORDER-1 bytes before i in the window) for each byte of the window."""
        data = np.frombuffer(window, dtype=np.uint8).astype(np.int64)
        size = len(data)
        probability = np.full(size, 1.0 / VOCAB)
        for n in range(1, self.order + 1):
            positions = np.arange(n - 1, size)  # where n-1 bytes of context exist
            grams = np.zeros(len(positions), dtype=np.int64)
            for back in range(n - 1, -1, -1):
                grams = grams * VOCAB + data[positions - back]
            count, total, types = self.tables[n].lookup(grams)
            lower = probability[positions]
            seen = total > 0
            mixed = np.where(
                seen,
                np.maximum(count - self.discount, 0) / np.where(seen, total, 1)
                + self.discount * types / np.where(seen, total, 1) * lower,
                lower,
            )
            probability[positions] = mixed
        return np.log(probability)


def tuned(train: bytes, windows: list[bytes]) -> KneserNey:
    """The Kneser-Ney model of the order and discount (ORDERS x DISCOUNTS) with the lowest bpb on
    `windows`: validation text, so that the baseline is not fitted to the test plays."""
    best: tuple[float, KneserNey, float] | None = None
    for order in ORDERS:
        model = KneserNey(train, order)
        for discount in DISCOUNTS:
            model.discount = discount
            value = bpb(np.concatenate([model.logprobs(window) for window in windows]))
            if best is None or value < best[0]:
                best = (value, model, discount)
    assert best is not None
    _, model, model.discount = best
    return model
