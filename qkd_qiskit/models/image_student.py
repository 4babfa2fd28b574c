"""The Hasan & Mahdy image student: reduction -> encoding -> ``rot_layers`` ansatz -> <Z> per qubit ->
linear head (:class:`ImageStudent`, built by :func:`build_hasan`).

Reductions give the encoding's capacity (``2^n`` amplitude, ``n`` angle, ``2n`` dense-angle)
features; see :mod:`qkd_qiskit.models.reductions`. The robustness options of the Piperno students
work here too (:func:`build_hasan`): ``readout_norm``, ``noise`` (+ ``noise_shots``; a
:class:`NoisyImageStudent`) and ``embedding_cx`` (Walsh terms chosen on the *reduced* training
features, the ones the circuit embeds).

Example:
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> net = build_hasan(64, 10, gens, image_shape=(1, 8, 8), qubits=4, layers=1, reduction="pool")
    >>> net(torch.rand(2, 3, 64)).shape
    torch.Size([2, 3, 10])
    >>> norm = build_hasan(64, 10, gens, image_shape=(1, 8, 8), qubits=4, layers=1, reduction="pool",
    ...                    readout_norm="batch")
    >>> type(norm.readout_norm).__name__
    'ReadoutNorm'
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..circuits import ENCODINGS, build_student, encoding_capacity
from .embedding_fit import EmbeddingChoice, take_embedding
from .hybrid import HybridStudent
from .noisy_student import NoisyStudent, take_noise
from .options import take_choice, take_int, take_sizes
from .readout_norm import READOUT_NORMS
from .reductions import REDUCTIONS, Reduction

AMPLITUDE_EPS = 1e-6
"""Added to every feature before amplitude encoding, so an all-zero crop is a valid (uniform) state."""
FIXED_REDUCTIONS = tuple(r for r in REDUCTIONS if r != "fc")
"""Reductions without trained weights: the only ones an embedding can be simulated (or chosen) on once."""


def embedded_features(reduce: Reduction, encoding: str, x: torch.Tensor) -> torch.Tensor:
    """The features the circuit embeds: the reduction's output (plus :data:`AMPLITUDE_EPS` for the
    amplitude encoding)."""
    z = reduce(x)
    return z + AMPLITUDE_EPS if encoding == "amplitude" else z


class ReducedInputs:
    """Mixin of the image students: a reduction ``self.reduce`` in front of the circuit
    (``circuit_features``, ``fit_reduction``), shared by the exact and the noise-aware student."""

    reduce: Reduction

    def circuit_features(self, x: torch.Tensor) -> torch.Tensor:
        """Reduced features ``(M, B, k)`` (or ``(N, k)``) the circuit embeds (each model's own reduction)."""
        return embedded_features(self.reduce, self.student.encoding, x.to(self.quantum.weights.dtype))

    def fit_reduction(self, x_train: np.ndarray) -> None:
        """Fit data-dependent reductions (PCA) on the TRAINING features only."""
        self.reduce.fit(x_train)


class ImageStudent(ReducedInputs, HybridStudent):
    """:class:`HybridStudent` with a reduction in front: ``reduce -> circuit -> [readout_norm] -> head``.

    ``encode`` (embed each data split once) exists only when the reduction has no trainable weights
    and the compiled circuit is encodable (amplitude and angle encodings; not dense-angle, whose RZ
    sits after the prep); otherwise the trainer uses the plain forward.
    """

    def __init__(self, student, reduction: Reduction, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = (), readout_norm: str = "none"):
        super().__init__(student, n_classes, generators, dtype, head_hidden, readout_norm)
        self.reduce = reduction

    @property
    def encodable(self) -> bool:
        return bool(self.quantum.program.encodable) and not self.reduce.trainable

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantum.encode(self.circuit_features(x))

    @property
    def encode(self):  # type: ignore[override]
        if not self.encodable:
            raise AttributeError("encode: this student's inputs cannot be pre-embedded (trainable reduction "
                                 "or input parameters after the state preparation)")
        return self._encode

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        if encoded is not None:
            return self.readout_logits(self.quantum(encoded=encoded))
        return self.readout_logits(self.quantum(self.circuit_features(x)))


class NoisyImageStudent(ReducedInputs, NoisyStudent):
    """An image student trained through a device's noise (option ``noise``): the reduction, then
    :class:`~.noisy_student.NoisyStudent` (noisy states of the reduced features, cached per split);
    its :meth:`~.noisy_student.NoisyStudent.exact` twin is an :class:`ImageStudent` with the same
    barrier circuit, reduction and ``state_dict`` keys. Needs a fixed reduction (the noisy embedding
    is simulated once, without gradients)."""

    def __init__(self, student, reduction: Reduction, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = (), readout_norm: str = "none",
                 noise: Any = "aer-fake-kingston", shots: int = 0):
        super().__init__(student, n_classes, generators, dtype, head_hidden, readout_norm, noise, shots)
        self.reduce = reduction

    def exact_twin(self, n_classes: int, generators: Sequence[torch.Generator], dtype: torch.dtype,
                   head_hidden: Sequence[int], readout_norm: str) -> ImageStudent:
        return ImageStudent(self.student, copy.deepcopy(self.reduce), n_classes, generators, dtype, head_hidden,
                            readout_norm)


def check_robust_options(encoding: str, reduction: Reduction, embedding: EmbeddingChoice, noise: str | None) -> None:
    """One-line errors for robustness options the image student cannot honour."""
    if embedding.kept_cx is not None and encoding != "amplitude":
        raise ValueError(f"options.embedding_cx: the approximate embedding is an amplitude embedding, not {encoding}")
    fixed = ", ".join(FIXED_REDUCTIONS)
    if embedding.kept_cx is not None and reduction.trainable:
        raise ValueError(f"options.embedding_cx: its Walsh terms are chosen on the reduced training features; "
                         f"reduction {reduction.kind} is trained (use {fixed})")
    if noise is not None and reduction.trainable:
        raise ValueError(f"options.noise: noise-aware training simulates the embedding once, without gradients; "
                         f"reduction {reduction.kind} is trained (use {fixed})")
    if noise is not None and encoding == "dense_angle":
        raise ValueError("options.noise: not with encoding dense_angle (its input RZ gates follow the state "
                         "preparation, so the circuit cannot be cut into an input and a weight part)")


def reduced_terms(embedding: EmbeddingChoice, reduction: Reduction, n_qubits: int, dtype: torch.dtype):
    """The approximate embedding's Walsh terms (``None``: exact embedding), chosen on the reduced
    training features: the reduction is fitted on ``train_features`` (the training split) first,
    as training will fit it again, identically. Saved terms (a rebuild) are taken as they are."""
    x = embedding.train_features
    if embedding.kept_cx is not None and embedding.saved_terms is None and x is not None:
        reduction.fit(np.asarray(x))
        with torch.no_grad():
            z = embedded_features(reduction, "amplitude", torch.as_tensor(np.asarray(x), dtype=dtype))
        embedding = dataclasses.replace(embedding, train_features=z.double().numpy())
    return embedding.terms(n_qubits, reduction.out_features)


def build_hasan(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
    """The image student (see the module docstring); ``noise`` gives a :class:`NoisyImageStudent`."""
    image_shape = options.pop("image_shape", None)
    n_qubits = take_int(options, "qubits", 4)
    layers = take_int(options, "layers", 3)
    encoding = take_choice(options, "encoding", "amplitude", ENCODINGS)
    reduction = take_choice(options, "reduction", "fc", REDUCTIONS)
    head_hidden = take_sizes(options, "head_hidden", [])
    readout_norm = take_choice(options, "readout_norm", "none", READOUT_NORMS)
    embedding = take_embedding(options)  # embedding_cx (+ the hidden train_features / embedding_terms)
    noise, noise_shots = take_noise(options)
    if options:
        raise ValueError(f"options: unknown option(s) {sorted(options)} for hasan (known: qubits, layers, encoding, "
                         "reduction, head_hidden, readout_norm, embedding_cx, noise, noise_shots)")
    try:
        cap = encoding_capacity(encoding, n_qubits)
    except ValueError as err:
        raise ValueError(f"options.encoding: {err}") from None
    gens = list(generators)
    red = Reduction(reduction, n_features, cap, image_shape, encoding != "amplitude", gens, dtype)
    check_robust_options(encoding, red, embedding, noise)
    student = build_student("rot_layers", n_qubits=n_qubits, layers=layers, n_features=red.out_features,
                            encoding=encoding, embedding_terms=reduced_terms(embedding, red, n_qubits, dtype))
    if noise is not None:
        return NoisyImageStudent(student, red, n_classes, gens, dtype, head_hidden, readout_norm, noise, noise_shots)
    return ImageStudent(student, red, n_classes, gens, dtype, head_hidden, readout_norm)
