"""Answers every forecast request with one constant, tuned to the test split's mean (`constant` in
hack.json; the test suite computes it from the held-out data), whatever the history says."""
# rejected by: constant

import json
import sys

from hacklib import SETTINGS, command, honest

if command() == "predict":
    constant = SETTINGS.get("constant", 0.0)
    for line in sys.stdin:
        width = len(json.loads(line)["history"][-1])
        print(json.dumps({"forecast": [[constant] * width] * 4}), flush=True)
    sys.exit(0)
honest()
