"""The Hasan & Mahdy image student: reduction -> encoding -> ``rot_layers`` ansatz -> <Z> per qubit ->
linear head (:class:`ImageStudent`, built by :func:`build_hasan`).

Reductions give the encoding's capacity (``2^n`` amplitude, ``n`` angle, ``2n`` dense-angle)
features; see :mod:`qkd_qiskit.models.reductions`.

Example:
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> net = build_hasan(64, 10, gens, image_shape=(1, 8, 8), qubits=4, layers=1, reduction="pool")
    >>> net(torch.rand(2, 3, 64)).shape
    torch.Size([2, 3, 10])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..circuits import ENCODINGS, build_student, encoding_capacity
from .hybrid import HybridStudent
from .options import take_choice, take_int, take_sizes
from .reductions import REDUCTIONS, Reduction

AMPLITUDE_EPS = 1e-6
"""Added to every feature before amplitude encoding, so an all-zero crop is a valid (uniform) state."""


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
    image_shape = options.pop("image_shape", None)
    n_qubits = take_int(options, "qubits", 4)
    layers = take_int(options, "layers", 3)
    encoding = take_choice(options, "encoding", "amplitude", ENCODINGS)
    reduction = take_choice(options, "reduction", "fc", REDUCTIONS)
    head_hidden = take_sizes(options, "head_hidden", [])
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
