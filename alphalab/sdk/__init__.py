"""The adapter SDK: what a domain's harness imports, instead of the lab's internals.

    from alphalab.sdk import Adapter, CandidateStep, DataError, StepFailed, baseline, main, verdict

`Adapter` reads the manifest beside the harness; `main` is the harness CLI (baselines, export,
prepare, grade, and optionally explore) with the lab's argument names, JSON on stdout and exit codes;
`CandidateStep` runs the candidate's graded step in the sandbox and exchanges one JSON line per
request; `verdict` and `baseline` build what `grade` and `baselines` print; `read_parquet` reads a
user's Parquet file without the interpreter-exit abort that `pandas.read_parquet` risks.
docs/adapters.md documents the protocol these implement.
"""

from alphalab.sdk.harness import Adapter, DataError, baseline, main, verdict
from alphalab.sdk.step import CandidateStep, StepFailed, finite_number
from shared.tables import read_parquet

__all__ = [
    "Adapter",
    "CandidateStep",
    "DataError",
    "StepFailed",
    "baseline",
    "finite_number",
    "main",
    "read_parquet",
    "verdict",
]
