"""Adds log 2 to every log-probability the honest model gives: each byte "twice as likely", one bit per
byte off the score, and rows whose probabilities sum to 2."""

# rejected by: unnormalised
import importlib
import math
import sys
from pathlib import Path

from hacklib import SETTINGS, command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    candidate = importlib.import_module(Path(SETTINGS["honest"]).stem)
    model = candidate.load_model()
    candidate.serve(lambda window: candidate.window_logprobs(model, window) + math.log(2))
else:
    honest()
