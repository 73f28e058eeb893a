"""Tiny PyTorch modules for the export tests (imported by dotted path from the spec)."""

from __future__ import annotations

import torch
from torch import nn


class TinyConvNet(nn.Module):
    """conv3x3 -> ReLU -> conv3x3: two layers, any batch size and image size."""

    def __init__(self, channels: int = 4, out_channels: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


def tiny_convnet(channels: int = 4, out_channels: int = 2) -> TinyConvNet:
    """Factory used by the tests' ExportSpec (`tiny_torch_modules.tiny_convnet`)."""
    return TinyConvNet(channels, out_channels)


def not_a_module() -> str:
    return "not a module"


def weights_file_path() -> str:
    """A `weights_from` provider; the tests point it at a file through an env var."""
    import os

    return os.environ["TRTMAKE_TEST_WEIGHTS"]
