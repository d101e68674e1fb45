"""The kernels candidate: `fit --config config.json` writes plan.json; `predict` serves `ModelNew`s.

`predict` hands over to `driver.py` (written by the harness's `prepare`), building each task's
`ModelNew` from `kernels/<task>.py`, or the reference `Model` where `impl` is "naive".
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULTS = {"impl": "fused", "threads": 1, "seed": 0}
PLAN = HERE / "plan.json"


def fit(config_path):
    config = {**DEFAULTS, **json.loads(Path(config_path).read_text())}
    PLAN.write_text(json.dumps(config))
    print(f"plan: {config}", file=sys.stderr)


def predict():
    sys.path.insert(0, str(HERE))
    import driver
    import torch

    plan = json.loads(PLAN.read_text()) if PLAN.is_file() else dict(DEFAULTS)
    torch.set_num_threads(int(plan["threads"]))

    def build(name, init_args):
        if plan["impl"] == "naive":
            return driver.task_module(name).Model(*init_args).to(driver.DEVICE)
        return importlib.import_module(f"kernels.{name}").ModelNew(*init_args).to(driver.DEVICE)

    driver.serve(build)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["fit", "predict"])
    parser.add_argument("--config", default="config.json")
    arguments = parser.parse_args()
    fit(arguments.config) if arguments.command == "fit" else predict()
