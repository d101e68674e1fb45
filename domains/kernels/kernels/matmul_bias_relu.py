import torch
from torch import nn


class ModelNew(nn.Module):
    def forward(self, x, w, b):
        return torch.addmm(b, x, w).relu_()
