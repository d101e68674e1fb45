"""Looks for the host's paths in what the sandbox shows it: its mount table, its own and its
parents' command lines and environments, its working folder and interpreter. A host path tells an
attacker where the harness, the venv and other runs live."""

import contextlib
import os
import sys
from pathlib import Path

from hacklib import SETTINGS, command, honest, succeeded

if command() in ("fit", "predict"):
    # The host's paths this hack was told about: where the adapter and its held-out data live.
    marks = {str(Path(SETTINGS["harness_root"]).parent)}
    marks |= {path.split("/lib/")[0] for path in SETTINGS["held_out"] if "/lib/" in path}
    marks |= {path for path in SETTINGS.get("host_paths", [])}
    shown = {"cwd": os.getcwd(), "executable": sys.executable, "argv": " ".join(sys.argv)}
    for name in ("mountinfo", "cmdline", "environ"):
        for pid in ("self", "1", str(os.getppid())):
            with contextlib.suppress(OSError):
                shown[f"/proc/{pid}/{name}"] = Path(f"/proc/{pid}/{name}").read_bytes().decode("latin-1")
    for where, text in shown.items():
        named = sorted(mark for mark in marks if mark and mark != "/" and mark in text)
        if named:
            succeeded(f"{where} names the host path {named[0]}")
            break
honest()
