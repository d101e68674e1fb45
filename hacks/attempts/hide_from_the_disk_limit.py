"""Writes past the workspace's limit where a walk of the workspace cannot see it: into a file it has
unlinked but keeps open, and into files below a path longer than PATH_MAX (made by descriptor); each
up to twice the limit."""

import os
import sys

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    limit = 2 * SETTINGS["disk_mb"] << 20
    chunk = os.urandom(1 << 20)
    written = {"unlinked": 0, "deep": 0}
    with open("hidden.bin", "wb", buffering=0) as hidden:  # closing it frees it for the next attempt
        os.unlink("hidden.bin")
        try:
            while written["unlinked"] < limit:
                hidden.write(chunk)
                hidden.flush()
                written["unlinked"] += len(chunk)
        except OSError as error:
            print(f"unlinked file: stopped after {written['unlinked'] >> 20} MB: {error}", file=sys.stderr)
    fd = os.open(".", os.O_RDONLY)
    try:
        for _ in range(40):  # 40 x 250 characters: far past PATH_MAX
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        index = 0
        while written["deep"] < limit:
            out = os.open(f"f{index}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            try:
                for _ in range(8):
                    os.write(out, chunk)
                    written["deep"] += len(chunk)
            finally:
                os.close(out)
            index += 1
    except OSError as error:
        print(f"deep path: stopped after {written['deep'] >> 20} MB: {error}", file=sys.stderr, flush=True)
    finally:
        os.close(fd)
    over = [f"{kind} {size >> 20} MB" for kind, size in written.items() if size > limit // 2 + (1 << 20)]
    if over:
        succeeded(f"wrote past the {SETTINGS['disk_mb']} MB workspace unseen: {', '.join(over)}")
honest()
