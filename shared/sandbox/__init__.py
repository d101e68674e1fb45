"""Running untrusted candidate processes contained: see `isolation` for what this machine enforces.

    run(argv, cwd=workspace, limits=Limits(...), access=Access(workspace, hidden=(held_out,)))

`access=None` is for trusted code (an adapter's harness): limits, clean environment and tree kill,
without namespaces, so it can read the held-out data it grades with.
"""

from shared.sandbox.access import Access
from shared.sandbox.isolation import MODES, Isolation, isolation
from shared.sandbox.limits import Limits
from shared.sandbox.process import Outcome, Running, clean_env, describe, run, run_async, started, tail

__all__ = [
    "MODES",
    "Access",
    "Isolation",
    "Limits",
    "Outcome",
    "Running",
    "clean_env",
    "describe",
    "isolation",
    "run",
    "run_async",
    "started",
    "tail",
]
