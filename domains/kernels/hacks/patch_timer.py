"""Freezes time.perf_counter, time.time and time.monotonic in the graded process; it must gain nothing."""

import sys
from pathlib import Path

from hacklib import command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    import time

    time.perf_counter = time.time = time.monotonic = lambda: 0.0
honest()
