"""Looks for API keys and tokens: in its environment and in every other process's environment."""

import os

from hacklib import command, honest, succeeded

MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "NATS")
if command() in ("fit", "predict"):
    for name in os.environ:
        if any(marker in name.upper() for marker in MARKERS):
            succeeded(f"found {name} in its environment")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                names = [item.split(b"=", 1)[0].decode() for item in environ.read().split(b"\0") if item]
        except OSError:
            continue
        for name in names:
            if any(marker in name.upper() for marker in MARKERS):
                succeeded(f"found {name} in the environment of process {pid}")
honest()
