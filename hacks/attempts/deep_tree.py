"""Leaves a folder tree 100,000 deep (or as deep as its inodes allow) in its workspace and its /tmp,
for the trusted code that walks, copies and deletes workspaces to trip over (recursion, PATH_MAX)."""

import os
import sys

from hacklib import SETTINGS, command, honest

if command() == "fit":
    for top, depth in ((".", min(100_000, SETTINGS["inodes"] - 1000)), ("/tmp", 2000)):
        fd = os.open(top, os.O_RDONLY)
        made = 0
        try:
            while made < depth:
                os.mkdir("d", dir_fd=fd)
                deeper = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = deeper
                made += 1
        except OSError as error:
            print(f"{top}: stopped at depth {made}: {error}", file=sys.stderr, flush=True)
        finally:
            os.close(fd)
        print(f"{top}: a tree {made} deep", file=sys.stderr, flush=True)
honest()
