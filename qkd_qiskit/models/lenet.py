"""LeNet-5 teacher ensembles (Hasan & Mahdy study): conv(6) - ReLU - maxpool - conv(16) - ReLU -
maxpool - 120 - 84 - classes, the M models as one grouped convolution (``groups=M``).

5x5 kernels without padding for 28x28 (44,426 parameters for 10 classes, the "~44k" LeNet of the
paper's code) and 32x32x3 (62,006), 3x3 kernels with padding 1 for the 8x8 digits (19,754).

Example:
    >>> from qkd_qiskit.models.ensemble import count_params
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> t = build_lenet5(784, 10, gens, image_shape=(1, 28, 28))
    >>> t(torch.zeros(2, 3, 784)).shape, count_params(t)
    (torch.Size([2, 3, 10]), 44426)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .ensemble import EnsembleMLP, uniform
from .options import take_sizes


class EnsembleLeNet5(nn.Module):
    """LeNet-5 style CNN for M models at once (grouped convolutions)."""

    def __init__(self, image_shape: Sequence[int], n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, channels: Sequence[int] = (6, 16),
                 hidden: Sequence[int] = (120, 84)):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.kernel, self.padding = (5, 0) if min(h, w) >= 20 else (3, 1)
        k, p = self.kernel, self.padding
        self.c1, self.c2 = channels
        size = [h, w]
        for _ in range(2):
            size = [(s + 2 * p - k + 1) // 2 for s in size]
        if min(size) < 1:
            raise ValueError(f"options: image shape {tuple(image_shape)} is too small for LeNet-5")
        gens = list(generators)

        def conv(out_c: int, in_c: int) -> tuple[nn.Parameter, nn.Parameter]:
            bound = 1 / math.sqrt(in_c * k * k)
            wt = torch.stack([uniform((out_c, in_c, k, k), bound, g, dtype) for g in gens])
            b = torch.stack([uniform((out_c,), bound, g, dtype) for g in gens])
            return nn.Parameter(wt), nn.Parameter(b)

        self.conv1_weight, self.conv1_bias = conv(self.c1, c)
        self.conv2_weight, self.conv2_bias = conv(self.c2, self.c1)
        self.flat = self.c2 * size[0] * size[1]
        self.mlp = EnsembleMLP([self.flat, *hidden, n_classes], gens, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, b, f = x.shape
        c, h, w = self.image_shape
        if m != self.conv1_weight.shape[0] or f != c * h * w:
            raise ValueError(f"EnsembleLeNet5: expected input (M={self.conv1_weight.shape[0]}, B, {c * h * w}), "
                             f"got {tuple(x.shape)}")
        z = x.reshape(m, b, c, h, w).transpose(0, 1).reshape(b, m * c, h, w)
        for wt, bias in ((self.conv1_weight, self.conv1_bias), (self.conv2_weight, self.conv2_bias)):
            z = F.conv2d(z, wt.reshape(-1, *wt.shape[2:]), bias.reshape(-1), padding=self.padding, groups=m)
            z = F.max_pool2d(torch.relu(z), 2)
        z = z.reshape(b, m, self.flat).transpose(0, 1)
        return self.mlp(torch.relu(z))


def build_lenet5(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
    image_shape = options.pop("image_shape", None)
    channels = take_sizes(options, "channels", [6, 16], length=2)
    hidden = take_sizes(options, "hidden", [120, 84])
    if options:
        raise ValueError(f"options: unknown option(s) {sorted(options)} for lenet5 (known: channels, hidden)")
    if image_shape is None:
        side = int(round(math.sqrt(n_features)))
        if side * side != n_features:
            raise ValueError(f"options: lenet5 needs an image dataset (got {n_features} flat features)")
        image_shape = (1, side, side)
    return EnsembleLeNet5(image_shape, n_classes, generators, dtype, channels, hidden)
