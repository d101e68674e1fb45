"""Helpers for driving the traffic adapter through its CLI contract, as the lab's services do."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from shared.domain import builtin_domains

TRAFFIC = builtin_domains()["traffic"]


def harness(*args: str, expect_exit: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the traffic harness CLI and check its exit code."""
    done = subprocess.run(
        [sys.executable, str(TRAFFIC / "harness.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == expect_exit, done.stderr
    return done


def harness_json(*args: str) -> dict[str, Any]:
    """The one JSON object a successful harness command prints."""
    return json.loads(harness(*args).stdout)
