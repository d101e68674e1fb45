"""Makes empty files, which a byte limit does not see, until something stops it (or 300,000)."""

import os
import sys

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    made = 0
    os.mkdir("many")
    fd = os.open("many", os.O_RDONLY)
    try:
        while made < 300_000:
            os.close(os.open(str(made), os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            made += 1
    except OSError as error:
        print(f"stopped after {made} files: {error}", file=sys.stderr, flush=True)
    if made > SETTINGS["inodes"]:
        succeeded(f"made {made} files against a limit of {SETTINGS['inodes']} inodes")
honest()
