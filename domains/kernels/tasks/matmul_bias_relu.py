"""relu(x @ w + b)."""

import torch
from torch import nn

DIMS = {"rows": 128, "inner": 256, "cols": 256}
CHECK = {"rows": (1, 40), "inner": (3, 130), "cols": (3, 130)}
ITERATIONS = 20
TOLERANCE = 1e-4


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, w, b):
        return torch.relu(torch.matmul(x, w) + b)


def shapes(rows, inner, cols):
    return [(rows, inner), (inner, cols), (cols,)]


def get_inputs():
    return [torch.randn(s) for s in shapes(**DIMS)]


def get_init_inputs():
    return []
