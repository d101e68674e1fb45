"""A fork bomb: children that sleep, forked until the kernel refuses (stops itself at 3,000)."""

import os
import sys
import time

from hacklib import command, honest, succeeded

if command() == "fit":
    children = 0
    try:
        while children < 3000:
            if os.fork() == 0:
                time.sleep(120)
                os._exit(0)
            children += 1
    except OSError as error:
        print(f"fork refused after {children} children: {error}", file=sys.stderr, flush=True)
        raise
    succeeded(f"forked {children} processes")
honest()
