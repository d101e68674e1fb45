"""Splits its memory over several processes, each under the per-process limit and together well over
the run's: four children each touch 60% of the limit and hold it, then report."""

import os
import sys
import time

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    share = int(0.6 * SETTINGS["memory_mb"]) << 20
    children = []
    for _ in range(4):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            block = bytearray(share)
            for offset in range(0, share, 4096):
                block[offset] = 1
            os.write(write, b"1")
            time.sleep(5)
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    held = sum(1 for _, read in children if os.read(read, 1) == b"1")
    print(f"{held} of 4 children hold {share >> 20} MB each", file=sys.stderr, flush=True)
    if held == 4:
        succeeded(f"held {4 * share >> 20} MB in 4 processes against a limit of {SETTINGS['memory_mb']} MB")
    for pid, _ in children:
        os.waitpid(pid, 0)
honest()
