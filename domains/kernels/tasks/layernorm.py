"""Layer normalisation over the last dimension, written out (mean, variance, affine)."""

import torch
from torch import nn

DIMS = {"rows": 256, "cols": 1024}
CHECK = {"rows": (1, 64), "cols": (3, 333)}
ITERATIONS = 20
TOLERANCE = 1e-4


class Model(nn.Module):
    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x, weight, bias):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * weight + bias


def shapes(rows, cols):
    return [(rows, cols), (cols,), (cols,)]


def get_inputs():
    return [torch.randn(s) for s in shapes(**DIMS)]


def get_init_inputs():
    return [1e-5]
