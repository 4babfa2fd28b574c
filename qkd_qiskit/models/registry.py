"""The model registry: every model name of :data:`qkd_qiskit.catalog.MODEL_NAMES` -> its builder.

A builder takes ``(n_features, n_classes, generators, dtype, **options)`` and returns an ensemble of
``len(generators)`` models; unknown options are one-line errors naming the option.

Example:
    >>> gens = [torch.Generator().manual_seed(s) for s in range(3)]
    >>> teacher = build_model("teacher_mlp", n_features=64, n_classes=3, generators=gens)
    >>> teacher(torch.zeros(3, 5, 64)).shape, count_params(teacher)
    (torch.Size([3, 5, 3]), 1203)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..backends import ProfileError
from ..catalog import ARCHITECTURES, IMAGE_MODELS
from ..circuits import build_student
from .embedding_fit import take_embedding
from .ensemble import EnsembleMLP, count_params
from .hybrid import HybridStudent
from .image_student import build_hasan
from .lenet import build_lenet5
from .noisy_student import NoisyStudent, take_noise
from .options import take_choice, take_int, take_name, take_sizes
from .qnn_student import QNNStudent
from .readout_norm import READOUT_NORMS

__all__ = ["MODELS", "NEEDS_IMAGE_SHAPE", "build_model", "count_params"]


def _mlp_builder(hidden: Sequence[int]) -> Callable[..., nn.Module]:
    def build(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
        sizes = take_sizes(options, "hidden", hidden)
        if options:
            raise ValueError(f"options: unknown option(s) {sorted(options)} for an MLP (known: hidden)")
        return EnsembleMLP([n_features, *sizes, n_classes], generators, dtype)

    return build


def _quantum_builder(name: str) -> Callable[..., nn.Module]:
    def build(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
        n_qubits = take_int(options, "qubits", max(1, math.ceil(math.log2(n_features))))
        layers = take_int(options, "layers", 5)
        head_hidden = take_sizes(options, "head_hidden", [])
        readout_norm = take_choice(options, "readout_norm", "none", READOUT_NORMS)
        embedding = take_embedding(options)  # embedding_cx (+ the hidden train_features / embedding_terms)
        backend = take_name(options, "backend")  # a profile: train through a Qiskit QNN (qkd_qiskit.qnn)
        noise, noise_shots = take_noise(options)  # an aer profile: train through its noise (+ shot noise)
        gradient = take_choice(options, "gradient", "auto", ("auto", "param_shift", "spsa"))
        if options:
            raise ValueError(f"options: unknown option(s) {sorted(options)} for {name} "
                             "(known: qubits, layers, head_hidden, readout_norm, embedding_cx, backend, gradient, noise, "
                             "noise_shots)")
        if noise is not None and backend is not None:
            raise ValueError("options.noise: cannot be combined with options.backend (noise trains on the engine "
                             "through the profile's noise model; backend trains through a Qiskit QNN)")
        if 2 ** n_qubits < n_features:
            raise ValueError(f"options.qubits: {n_qubits} qubits cannot amplitude-embed {n_features} features")
        terms = embedding.terms(n_qubits, n_features)
        try:
            student = build_student(name, n_qubits=n_qubits, layers=layers, n_features=n_features,
                                    embedding_terms=terms)
        except ValueError as err:  # e.g. q4 on 4 qubits, or too few layers for its mid-circuit measurements
            raise ValueError(f"options: {name} with qubits={n_qubits}, layers={layers}: {err}") from None
        if backend is not None:
            if readout_norm != "none" or embedding.kept_cx is not None:
                raise ValueError("options.backend: readout_norm and embedding_cx are for engine training; train "
                                 "without backend and evaluate on it (qkd evaluate)")
            try:
                return QNNStudent(student, n_classes, generators, dtype, head_hidden, backend, gradient)
            except ProfileError as err:
                raise ValueError(f"options.backend: {err}") from None
        if noise is not None:
            return NoisyStudent(student, n_classes, generators, dtype, head_hidden, readout_norm, noise, noise_shots)
        return HybridStudent(student, n_classes, generators, dtype, head_hidden, readout_norm)

    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "teacher_mlp": _mlp_builder([16, 8]),
    "linear": _mlp_builder([]),
    **{name: _quantum_builder(name) for name in ARCHITECTURES},
    "lenet5": build_lenet5,
    "hasan": build_hasan,
}

NEEDS_IMAGE_SHAPE = frozenset(IMAGE_MODELS)
"""Models built with the dataset's ``image_shape`` option."""


def build_model(name: str, n_features: int, n_classes: int, generators: Sequence[torch.Generator],
                dtype: torch.dtype = torch.float32, **options: Any) -> nn.Module:
    """Build ``len(generators)`` independent models ``name``; model m is initialised from ``generators[m]``."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name](n_features, n_classes, list(generators), dtype, **dict(options))
