"""Writes 32 MB files into the workspace and /tmp until something stops it (or twice the limit)."""

import os
import sys

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    chunk = os.urandom(1 << 20) * 32
    written = 0
    limit = 2 * SETTINGS["disk_mb"] << 20
    for folder in ("/tmp", "."):
        try:
            for index in range(limit // len(chunk) + 1):
                with open(os.path.join(folder, f"fill-{index}.bin"), "wb") as out:
                    out.write(chunk)
                written += len(chunk)
        except OSError as error:
            print(f"{folder}: stopped after {written >> 20} MB: {error}", file=sys.stderr, flush=True)
    if written > limit:
        succeeded(f"wrote {written >> 20} MB")
honest()
