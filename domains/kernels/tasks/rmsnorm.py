"""RMSNorm over the last dimension, written out."""

import torch
from torch import nn

DIMS = {"rows": 256, "cols": 1024}
CHECK = {"rows": (1, 64), "cols": (3, 333)}
ITERATIONS = 20
TOLERANCE = 1e-4


class Model(nn.Module):
    def __init__(self, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x, weight):
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * weight


def shapes(rows, cols):
    return [(rows, cols), (cols,)]


def get_inputs():
    return [torch.randn(s) for s in shapes(**DIMS)]


def get_init_inputs():
    return [1e-6]
