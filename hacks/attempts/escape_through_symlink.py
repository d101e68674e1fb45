"""Leaves its workspace through symbolic links: to the root, the harness folder and the home folder,
then writes and reads through them."""

import os

from hacklib import SETTINGS, command, honest, succeeded

if command() == "fit":
    targets = {"to-root": "/", "to-harness": SETTINGS["harness_root"], "to-home": os.path.expanduser("~root")}
    for name, target in targets.items():
        try:
            os.symlink(target, name)
        except OSError:
            continue
        try:
            with open(os.path.join(name, "escaped-from-a-workspace.txt"), "w") as out:
                out.write("a candidate was here\n")
            succeeded(f"wrote through {name} -> {target}")
        except OSError:
            pass
        harness = os.path.join(name, SETTINGS["harness_entry"])
        if name == "to-harness" and os.path.isfile(harness):
            succeeded(f"read the harness through {name} -> {target}")
honest()
