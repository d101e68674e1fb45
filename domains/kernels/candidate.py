"""The kernels candidate: `fit --config config.json` builds the chosen variants; `predict` serves them.

`fit` writes plan.json and, into build/ in the workspace (the only place it may write), what the
chosen variants need: the C++ extension (cpp), numba's cache (numba) and inductor's cache (compile),
the last two warmed on a few shapes. `predict` (workspace read-only) copies those caches to a
temporary folder, loads the extension and hands over to `driver.py` (written by the harness's
`prepare`), building each task's model with `kernels/variants.py`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kernels.variants import IMPLS, impl, model  # noqa: E402

BUILD = HERE / "build"
CACHES = {"numba": "NUMBA_CACHE_DIR", "inductor": "TORCHINDUCTOR_CACHE_DIR"}
# inductor would put precompiled headers in the temporary folder (64 MB in the sandbox), not its cache.
os.environ["TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS"] = "0"
WARMED = ("compile", "numba", "reference-compile")
DEFAULTS = {
    **{f"impl_{name}": "fused" for name in IMPLS},
    "compile_mode": "default",
    "numba_tile": 256,
    "threads": 1,
    "seed": 0,
}
PLAN = HERE / "plan.json"


def warm(name, plan):
    """Run a warmed variant on the task's own shape and a small one, so its caches hold both."""
    import torch

    torch.set_num_threads(int(plan["threads"]))  # inductor compiles for the thread count it sees
    task = importlib.import_module(f"tasks.{name}")
    small = {key: (lo + hi) // 2 for key, (lo, hi) in task.CHECK.items()}
    built = model(name, task.get_init_inputs(), plan, "cpu")
    with torch.no_grad():
        for dims in (task.DIMS, small):
            built(*[torch.randn(shape) for shape in task.shapes(**dims)])


def fit(config_path):
    plan = {**DEFAULTS, **json.loads(Path(config_path).read_text())}
    chosen = {name: impl(plan, name) for name in IMPLS}
    BUILD.mkdir(exist_ok=True)
    for kind, variable in CACHES.items():
        os.environ[variable] = str(BUILD / kind)
    if "cpp" in chosen.values():
        from kernels import native

        native.build(BUILD / "native")
    for name, variant in chosen.items():
        if variant in WARMED:
            warm(name, plan)
    PLAN.write_text(json.dumps(plan))
    print(f"plan: {plan}", file=sys.stderr)


def predict():
    plan = json.loads(PLAN.read_text()) if PLAN.is_file() else dict(DEFAULTS)
    with tempfile.TemporaryDirectory() as scratch:
        for kind, variable in CACHES.items():
            if (BUILD / kind).is_dir():
                shutil.copytree(BUILD / kind, Path(scratch) / kind)
            os.environ[variable] = str(Path(scratch) / kind)
        import driver
        import torch

        torch.set_num_threads(int(plan["threads"]))
        if "cpp" in (impl(plan, name) for name in IMPLS):
            from kernels import native

            native.load(BUILD / "native")
        driver.serve(lambda name, init_args: model(name, init_args, plan, driver.DEVICE))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["fit", "predict"])
    parser.add_argument("--config", default="config.json")
    arguments = parser.parse_args()
    fit(arguments.config) if arguments.command == "fit" else predict()
