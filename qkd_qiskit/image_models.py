"""Image models (Hasan & Mahdy study): LeNet-5 teacher ensembles and reduced-input quantum students.

Same ensemble convention as :mod:`qkd_qiskit.models`: ``x (M, B, F) -> logits (M, B, C)``, every
parameter and buffer has the model index ``M`` as its leading dimension. Image models need the
dataset's ``image_shape`` ``(C, H, W)`` (passed by the experiment; features are flattened images).

* ``lenet5``: conv(6) - ReLU - maxpool - conv(16) - ReLU - maxpool - 120 - 84 - classes; 5x5 kernels
  without padding for 28x28 (44,426 parameters for 10 classes, the "~44k" LeNet of the paper's code)
  and 32x32x3 (62,006), 3x3 kernels with padding 1 for the 8x8 digits (19,754). The M models are
  one grouped convolution (``groups=M``).
* ``hasan``: reduction -> encoding -> ``rot_layers`` ansatz -> <Z> per qubit -> linear head.
  Reductions (output size = the encoding's capacity: ``2^n`` amplitude, ``n`` angle, ``2n``
  dense-angle): ``fc`` (trainable linear layer), ``crop`` (centre crop), ``pool`` (adaptive average
  pooling), ``pca`` (fitted on the training split only, :meth:`ImageStudent.fit_reduction`),
  ``none`` (raw features; must fit). ``crop``/``pool`` average the colour channels first and give
  at most the image's pixels (8x8 digits give 64 features even when 256 fit; amplitude pads).
  Angle encodings need features in [0, 1]: ``fc`` outputs pass through a sigmoid, ``pca`` outputs
  are min-max scaled with the training split's range (clipped).

Example:
    >>> import torch
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> t = build_lenet5(784, 10, gens, image_shape=(1, 28, 28))
    >>> from qkd_qiskit.models import count_params
    >>> t(torch.zeros(2, 3, 784)).shape, count_params(t)
    (torch.Size([2, 3, 10]), 44426)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import EnsembleLinear, EnsembleMLP, HybridStudent, _uniform

REDUCTIONS = ("fc", "crop", "pool", "pca", "none")
AMPLITUDE_EPS = 1e-6
"""Added to every feature before amplitude encoding, so an all-zero crop is a valid (uniform) state."""


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
            wt = torch.stack([_uniform((out_c, in_c, k, k), bound, g, dtype) for g in gens])
            b = torch.stack([_uniform((out_c,), bound, g, dtype) for g in gens])
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
    channels = options.pop("channels", [6, 16])
    hidden = options.pop("hidden", [120, 84])
    if options:
        raise ValueError(f"options: unknown option(s) {sorted(options)} for lenet5 (known: channels, hidden)")
    if image_shape is None:
        side = int(round(math.sqrt(n_features)))
        if side * side != n_features:
            raise ValueError(f"options: lenet5 needs an image dataset (got {n_features} flat features)")
        image_shape = (1, side, side)
    return EnsembleLeNet5(image_shape, n_classes, generators, dtype, channels, hidden)


# --------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------


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


class ImageStudent(HybridStudent):
    """:class:`HybridStudent` with a reduction in front: ``reduce -> circuit -> head``.

    ``encode`` (embed each data split once) exists only when the reduction has no trainable weights
    and the compiled circuit is encodable (amplitude and angle encodings; not dense-angle, whose RZ
    sits after the prep); otherwise the trainer uses the plain forward.
    """

    def __init__(self, student, reduction: Reduction, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = ()):
        super().__init__(student, n_classes, generators, dtype, head_hidden)
        self.reduce = reduction

    @property
    def encodable(self) -> bool:
        return bool(self.quantum.program.encodable) and not self.reduce.trainable

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        z = self.reduce(x)
        return z + AMPLITUDE_EPS if self.student.encoding == "amplitude" else z

    def circuit_features(self, x: torch.Tensor) -> torch.Tensor:
        """Reduced features ``(M, B, k)`` the circuit embeds (each model's own reduction)."""
        return self._pre(x.to(self.quantum.weights.dtype))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantum.encode(self._pre(x))

    @property
    def encode(self):  # type: ignore[override]
        if not self.encodable:
            raise AttributeError("encode: this student's inputs cannot be pre-embedded (trainable reduction "
                                 "or input parameters after the state preparation)")
        return self._encode

    def fit_reduction(self, x_train: np.ndarray) -> None:
        """Fit data-dependent reductions (PCA) on the TRAINING features only."""
        self.reduce.fit(x_train)

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        if encoded is not None:
            return self.head(self.quantum(encoded=encoded))
        return self.head(self.quantum(self._pre(x)))


def build_hasan(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
    from .circuits import build_student, encoding_capacity

    image_shape = options.pop("image_shape", None)
    n_qubits = options.pop("qubits", 4)
    layers = options.pop("layers", 3)
    encoding = options.pop("encoding", "amplitude")
    reduction = options.pop("reduction", "fc")
    head_hidden = options.pop("head_hidden", [])
    if options:
        raise ValueError(f"options: unknown option(s) {sorted(options)} for hasan "
                         "(known: qubits, layers, encoding, reduction, head_hidden)")
    try:
        cap = encoding_capacity(encoding, n_qubits)
    except ValueError as err:
        raise ValueError(f"options.encoding: {err}") from None
    gens = list(generators)
    red = Reduction(reduction, n_features, cap, image_shape, encoding != "amplitude", gens, dtype)
    student = build_student("rot_layers", n_qubits=n_qubits, layers=layers, n_features=red.out_features,
                            encoding=encoding)
    return ImageStudent(student, red, n_classes, gens, dtype, head_hidden)


IMAGE_MODELS = {"lenet5": build_lenet5, "hasan": build_hasan}
NEEDS_IMAGE_SHAPE = frozenset(IMAGE_MODELS)
