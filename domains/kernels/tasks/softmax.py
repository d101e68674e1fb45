"""Row softmax (KernelBench format; weights, if any, are inputs)."""

import torch
from torch import nn

DIMS = {"rows": 256, "cols": 1024}
CHECK = {"rows": (1, 64), "cols": (3, 333)}
ITERATIONS = 20
TOLERANCE = 1e-4
rows, cols = DIMS["rows"], DIMS["cols"]


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.softmax(x, dim=-1)


def shapes(rows, cols):
    return [(rows, cols)]


def get_inputs():
    return [torch.randn(s) for s in shapes(**DIMS)]


def get_init_inputs():
    return []
