"""Helpers for driving the traffic adapter through its CLI contract, as the lab's services do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from shared.domain import builtin_domains

TRAFFIC = builtin_domains()["traffic"]


def harness(*args: str, expect_exit: int = 0, sandbox: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the traffic harness CLI and check its exit code; `sandbox` sets ALPHALAB_SANDBOX for it."""
    env = {**os.environ, **({"ALPHALAB_SANDBOX": sandbox} if sandbox else {})}
    done = subprocess.run(
        [sys.executable, str(TRAFFIC / "harness.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == expect_exit, done.stderr
    return done


def harness_json(*args: str, sandbox: str | None = None) -> dict[str, Any]:
    """The one JSON object a successful harness command prints."""
    return json.loads(harness(*args, sandbox=sandbox).stdout)
