"""Writes the metrics and verdict files a naive lab would read, claiming a perfect score."""

import json
from pathlib import Path

from hacklib import SETTINGS, command, honest

if command() == "fit":
    fake = {"valid": True, "value": 0.0, "metrics": {SETTINGS["metric"]: 0.0}, "failures": []}
    for name in ("metrics.json", "results.json", "verdict.json", "score.json", "run.json"):
        Path(name).write_text(json.dumps(fake))
honest()
