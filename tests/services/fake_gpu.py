"""A stand-in `nvidia-smi` for machines without a GPU: a shell script on PATH that prints what the real
binary prints for the worker's query (services/worker/resources.py), and refuses any other arguments.

It stands in for the output format only (CSV, no header, no units, one line per GPU): the real binary,
the driver behind it and the GPU path of a run (CUDA_VISIBLE_DEVICES honoured by CUDA, the /dev/nvidia*
nodes usable inside bubblewrap) are checked on a GPU machine, by the tests that skip without one.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from services.worker.resources import QUERY

ARGS = f"--query-gpu={QUERY} --format=csv,noheader,nounits"

# Two GPUs: 15,000 MiB free on GPU 0 (1,000 used by someone else), 40,000 free on GPU 1.
TWO_GPUS = (
    "0, GPU-00000000-1111-2222-3333-444444444444, NVIDIA Stand-in A4000, 16000, 1000",
    "1, GPU-55555555-6666-7777-8888-999999999999, NVIDIA Stand-in A100, 40000, 0",
)


def fake_smi(folder: Path, lines: tuple[str, ...] = TWO_GPUS, *, exit_code: int = 0) -> Path:
    """Write an executable `nvidia-smi` into `folder` (to put first on PATH); return `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    printed = "\n".join(f"printf '%s\\n' {shlex.quote(line)}" for line in lines)
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$*" != {shlex.quote(ARGS)} ]; then echo "unexpected arguments: $*" >&2; exit 2; fi\n'
        f"{printed}\n"
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return folder


HARNESS = '''
"""A stand-in harness: grades every run 1.0 and records the GPU environment of the run (its own) and
of its candidate's fit (env.json) in seen.jsonl beside the adapter folder, tagged with the config's tag."""
import argparse, json, os, pathlib

KEYS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["prepare", "grade"])
parser.add_argument("--workspace")
parser.add_argument("--seconds")
parser.add_argument("--memory-mb")
parser.add_argument("--data")
args = parser.parse_args()
if args.command == "grade":
    workspace = pathlib.Path(args.workspace)
    seen = {
        "tag": json.loads((workspace / "config.json").read_text()).get("tag"),
        "harness": {key: os.environ.get(key) for key in KEYS},
        "fit": json.loads((workspace / "env.json").read_text()),
    }
    with open(pathlib.Path(__file__).resolve().parent.parent / "seen.jsonl", "a") as out:
        out.write(json.dumps(seen) + "\\n")
    print(json.dumps({"value": 1.0, "metrics": {}}))
'''

CANDIDATE = """
import json, os, sys

if sys.argv[1] == "fit":
    with open("env.json", "w") as out:
        json.dump({key: os.environ.get(key) for key in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}, out)
"""

MANIFEST = """
name = "gpu-standin"
objective = "record the GPU environment each run gets"
[metric]
name = "score"
direction = "maximize"
[budget]
run_seconds = 60
run_memory_mb = 1024
run_disk_mb = 16
"""


def standin_adapter(folder: Path, resources: str = "") -> Path:
    """An adapter folder whose runs record their GPU environment (`seen`); `resources` is the text of
    its manifest's [resources] table, if any (e.g. "gpus = 1")."""
    (folder / "prompts").mkdir(parents=True)
    manifest = MANIFEST + (f"[resources]\n{resources}\n" if resources else "")
    (folder / "domain.toml").write_text(manifest)
    (folder / "knowledge.md").write_text("A stand-in domain.\n")
    for role in ("explorer", "strategist", "worker", "supervisor"):
        (folder / "prompts" / f"{role}.md").write_text(f"You are the {role}.\n")
    (folder / "candidate.py").write_text(CANDIDATE)
    (folder / "harness.py").write_text(HARNESS)
    return folder


def seen(adapter: Path) -> dict[str, dict[str, dict[str, str | None]]]:
    """What the stand-in adapter's runs recorded, by tag: {"harness": {...}, "fit": {...}}."""
    path = adapter.parent / "seen.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {record["tag"]: record for record in records}
