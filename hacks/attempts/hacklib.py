"""What every known hack shares: its settings, its report of success, and the honest candidate it wraps.

A hack is the domain's own candidate with an attempt in front of it. It reads its settings from
`hack.json` beside it, tries its trick, and writes `HACK-SUCCEEDED: what` to stderr if the trick
worked; grading must never let that line appear. Every attempt is bounded, so a harness without a
sandbox is tested without wrecking the host: a fork bomb stops at a few thousand processes, a disk
filler at twice its limit.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

MARK = "HACK-SUCCEEDED"
_HERE = Path(__file__).parent
SETTINGS: dict[str, Any] = json.loads((_HERE / "hack.json").read_text())


def command() -> str:
    return sys.argv[1] if len(sys.argv) > 1 else ""


def succeeded(what: str) -> None:
    """Report a trick that worked. While graded, stop too: only a crash brings stderr to the verdict."""
    print(f"{MARK}: {what}", file=sys.stderr, flush=True)
    if command() == "predict":
        sys.exit(86)


def honest() -> None:
    """Hand over to the honest candidate, as if it had been started itself."""
    entry = _HERE / SETTINGS["honest"]
    sys.argv[0] = str(entry)
    runpy.run_path(str(entry), run_name="__main__")
