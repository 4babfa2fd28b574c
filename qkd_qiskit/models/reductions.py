"""Input reductions of the image students: image features ``(M, B, F)`` -> ``k`` circuit features.

``fc`` (trainable linear layer), ``crop`` (centre crop), ``pool`` (adaptive average pooling),
``pca`` (fitted on the training split only), ``none`` (raw features; must fit). ``crop``/``pool``
average the colour channels first and give at most the image's pixels (8x8 digits give 64 features
even when 256 fit; amplitude pads). Angle encodings need features in [0, 1]: ``fc`` outputs pass
through a sigmoid, ``pca`` outputs are min-max scaled with the training split's range (clipped).

Example:
    >>> gens = [torch.Generator().manual_seed(0)]
    >>> Reduction("pool", 64, 16, (1, 8, 8), False, gens, torch.float32)(torch.rand(1, 5, 64)).shape
    torch.Size([1, 5, 16])
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .ensemble import EnsembleLinear

REDUCTIONS = ("fc", "crop", "pool", "pca", "none")


def _grid(k: int) -> tuple[int, int]:
    """``(h, w)`` with ``h * w = k`` and h the largest divisor <= sqrt(k) (8 -> 2x4, 16 -> 4x4)."""
    h = max(d for d in range(1, int(math.isqrt(k)) + 1) if k % d == 0)
    return h, k // h


class Reduction(nn.Module):
    """Features ``(M, B, F)`` (or ``(N, F)``, using model 0's fitted state) -> ``(..., k)``."""

    def __init__(self, kind: str, n_features: int, k: int, image_shape: Sequence[int] | None,
                 unit_range: bool, generators: Sequence[torch.Generator], dtype: torch.dtype):
        super().__init__()
        if kind not in REDUCTIONS:
            raise ValueError(f"options.reduction: unknown reduction {kind!r} (known: {', '.join(REDUCTIONS)})")
        self.kind, self.unit_range = kind, unit_range
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        m = len(generators)
        if kind in ("crop", "pool"):
            if self.image_shape is None:
                raise ValueError(f"options.reduction: {kind} needs an image dataset")
            _, h, w = self.image_shape
            gh, gw = _grid(k)
            self.window = (min(gh, h), min(gw, w))
            self.out_features = self.window[0] * self.window[1]
        elif kind == "none":
            if n_features > k:
                raise ValueError(f"options.reduction: none keeps {n_features} features, more than the "
                                 f"encoding takes ({k})")
            self.out_features = n_features
        elif kind == "fc":
            self.fc = EnsembleLinear(n_features, k, generators, dtype)
            self.out_features = k
        else:  # pca
            self.out_features = min(k, n_features)
            self.register_buffer("mean", torch.zeros(m, n_features, dtype=dtype))
            self.register_buffer("components", torch.zeros(m, n_features, self.out_features, dtype=dtype))
            self.register_buffer("lo", torch.zeros(m, self.out_features, dtype=dtype))
            self.register_buffer("span", torch.ones(m, self.out_features, dtype=dtype))
            self.register_buffer("fitted", torch.zeros(m, dtype=torch.bool))

    @property
    def trainable(self) -> bool:
        return self.kind == "fc"

    @torch.no_grad()
    def fit(self, x_train: np.ndarray) -> None:
        """Fit PCA on the training features ``(N, F)`` (a no-op for the other reductions)."""
        if self.kind != "pca":
            return
        from threadpoolctl import threadpool_limits

        x = np.asarray(x_train, dtype=np.float64)
        mean = x.mean(0)
        with threadpool_limits(1):  # multi-threaded BLAS SVD stalls on a loaded 2-core machine (100x)
            _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        comp = np.zeros((x.shape[1], self.out_features))
        r = min(self.out_features, vt.shape[0])
        comp[:, :r] = vt[:r].T
        # deterministic sign: the largest-|.| loading of each component is positive
        signs = np.sign(comp[np.abs(comp).argmax(0), np.arange(comp.shape[1])])
        comp *= np.where(signs == 0, 1.0, signs)
        z = (x - mean) @ comp
        lo, hi = z.min(0), z.max(0)
        span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
        for name, v in (("mean", mean), ("components", comp), ("lo", lo), ("span", span)):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(v, dtype=buf.dtype).expand_as(buf))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        if self.kind == "fc":
            flat = x.dim() == 2
            z = self.fc(x.unsqueeze(0).expand(self.fc.weight.shape[0], -1, -1) if flat else x)
            z = torch.sigmoid(z) if self.unit_range else z
            return z[0] if flat else z
        if self.kind == "pca":
            if not bool(self.fitted.all()):
                raise RuntimeError("Reduction(pca): not fitted; call fit_reduction(x_train) before use")
            if x.dim() == 2:
                z = (x - self.mean[0]) @ self.components[0]
                lo, span = self.lo[0], self.span[0]
            else:
                z = torch.bmm(x - self.mean.unsqueeze(1), self.components)
                lo, span = self.lo.unsqueeze(1), self.span.unsqueeze(1)
            return ((z - lo) / span).clamp(0, 1) if self.unit_range else (z - lo) / span
        c, h, w = self.image_shape
        lead = x.shape[:-1]
        img = x.reshape(-1, c, h, w).mean(1, keepdim=True)
        wh, ww = self.window
        if self.kind == "crop":
            top, left = (h - wh) // 2, (w - ww) // 2
            out = img[:, :, top:top + wh, left:left + ww]
        else:
            out = F.adaptive_avg_pool2d(img, (wh, ww))
        return out.reshape(*lead, wh * ww)
