"""Answers only the shapes named in the task files (their DIMS) correctly, zeros elsewhere."""

# rejected by: incorrect
import sys
from pathlib import Path

from hacklib import command, honest

sys.path.insert(0, str(Path(__file__).resolve().parent))

if command() == "predict":
    import driver
    import torch

    serve = driver.serve

    def special(build):
        def made(name, args):
            model, task = build(name, args), driver.task_module(name)
            known = [tuple(s) for s in task.shapes(**task.DIMS)]

            def run(*xs):
                out = model(*xs)
                return out if [tuple(x.shape) for x in xs] == known else torch.zeros_like(out)

            return run

        return made

    driver.serve = lambda build: serve(special(build))
honest()
