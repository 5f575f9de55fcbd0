"""Anti-aliased resampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

Strided convolutions alias and transposed convolutions leave a checkerboard; a fixed binomial
blur before subsampling, or after zero-insertion, removes both. The layouts (a ``filt`` buffer
per layer, the pads, the exact convolution calls) follow the official CUT code, so its
checkpoints load strictly and its outputs are reproduced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_BINOMIAL = {3: (1.0, 2.0, 1.0), 4: (1.0, 3.0, 3.0, 1.0)}


def binomial_filter(size: int) -> torch.Tensor:
    """The normalised 2-D binomial kernel ``outer(row, row) / sum``."""
    row = torch.tensor(_BINOMIAL[size], dtype=torch.float64)
    kernel = (row[:, None] * row[None, :]).float()
    return kernel / kernel.sum()


class Downsample(nn.Module):
    """Blur with a 3x3 binomial filter, then keep every second pixel (reflect-padded)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Double the size by zero-insertion and a 4x4 binomial blur (bilinear-like, no checkerboard)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose2d(edge_pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])
        return out[:, :, 1:-1, 1:-1]


def edge_pad(x: torch.Tensor) -> torch.Tensor:
    """Pad one pixel on each side by repeating the edge (``ReplicationPad2d(1)``, value for
    value). Written with ``cat``: torch.compile fails on the backward of the replication pad
    after a grouped transposed convolution (torch 2.14, CPU: a stride check of
    ``replication_pad2d_backward``)."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[..., :1], x, x[..., -1:]], dim=3)
