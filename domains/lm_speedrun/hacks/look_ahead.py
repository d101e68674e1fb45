"""Answers row i with almost all its mass on byte i of the window it was sent: it reads the byte it is
asked to predict (a model without a causal mask learns exactly this)."""

# rejected by: non-causal
import importlib
import sys
from pathlib import Path

import numpy as np
from hacklib import SETTINGS, command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    candidate = importlib.import_module(Path(SETTINGS["honest"]).stem)

    def peek(window: bytes) -> np.ndarray:
        rows = np.full((len(window), 256), np.log(0.01 / 255), dtype=np.float32)
        rows[np.arange(len(window)), np.frombuffer(window, dtype=np.uint8)] = np.log(0.99)
        return rows

    candidate.serve(peek)
else:
    honest()
