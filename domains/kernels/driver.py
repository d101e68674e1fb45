"""The serving loop both the reference process and the candidate's `predict` run (one JSON line each).

Requests: {"op": "check", "task", "dims", "seed"} -> {"output": b64 float32, "shape"};
{"op": "run", "task", "dims", "seed", "iterations": N} -> {"checksums": [N floats]} (timed by the
harness from outside); {"op": "fetch", "index": j} -> output j of the last run. Inputs come from
`inputs(task, dims, seed, i)`: a random bank drawn once per request, each iteration a view at its own
offset, so nothing can be computed before the timed request arrives.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = False


def task_module(name):
    return importlib.import_module(f"tasks.{name}")


def banks(task, dims, seed):
    """One random bank per input (twice its size) and each iteration's offsets into it."""
    generator = torch.Generator().manual_seed(seed)
    shapes = task.shapes(**dims)
    out = []
    for shape in shapes:
        numel = 1
        for size in shape:
            numel *= size
        out.append((shape, numel, torch.randn(2 * numel, generator=generator).to(DEVICE)))
    return out, generator


def inputs(task, dims, seed, iterations):
    """The inputs of every iteration, as views into the banks."""
    made, generator = banks(task, dims, seed)
    offsets = torch.randint(0, 1 << 30, (iterations, len(made)), generator=generator).tolist()
    return [
        [
            bank[o % (numel + 1) : o % (numel + 1) + numel].view(shape)
            for (shape, numel, bank), o in zip(made, row, strict=True)
        ]
        for row in offsets
    ]


def weights(numel, seed):
    return torch.randn(numel, generator=torch.Generator().manual_seed(seed ^ 0x5EED)).to(DEVICE)


def checksum(output, w):
    return float(torch.dot(output.reshape(-1).float(), w))


def encode(output):
    data = output.detach().float().contiguous().cpu().numpy().astype("<f4").tobytes()
    return {"output": base64.b64encode(data).decode(), "shape": list(output.shape)}


def serve(build):
    """Answer requests on stdin; `build(task_name, init_args)` returns the model to run."""
    models, last = {}, []
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "fetch":
            answer = encode(last[request["index"]])
        else:
            name = request["task"]
            task = task_module(name)
            if name not in models:
                models[name] = build(name, task.get_init_inputs())
            model = models[name]
            with torch.no_grad():
                if op == "check":
                    answer = encode(model(*inputs(task, request["dims"], request["seed"], 1)[0]))
                else:
                    batches = inputs(task, request["dims"], request["seed"], request["iterations"])
                    last = [model(*batch) for batch in batches]
                    w = weights(last[0].numel(), request["seed"])
                    answer = {"checksums": [checksum(out, w) for out in last]}
                    if DEVICE == "cuda":
                        torch.cuda.synchronize()
        print(json.dumps(answer), flush=True)


THREADS = 1  # the reference's torch threads, as the sandbox sets them


def reference(name, init_args):
    return task_module(name).Model(*init_args).to(DEVICE)


if __name__ == "__main__":
    torch.set_num_threads(THREADS)
    serve(reference)
