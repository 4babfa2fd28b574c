"""Model ensembles: M independent models (one per seed) evaluated in one batched call.

Every model here maps features ``x`` of shape ``(M, B, F)`` to logits ``(M, B, C)``; every parameter
and buffer carries the model index as its leading dimension. That one convention lets the trainer
train the seeds of an architecture together, each with its own initialisation and data order, and
lets a checkpoint hold one model as the ``[m]`` slice of every tensor.

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

QUANTUM_MODELS = ("hea", "universal", "universal_h", "q2", "q3", "q4", "q5")
QUANTUM_STUDENT_MODELS = (*QUANTUM_MODELS, "hasan")
"""Every registry model whose core is a circuit (``hasan``: the image students of image_models)."""


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)


class EnsembleLinear(nn.Module):
    """``M`` independent affine maps ``in_features -> out_features`` (torch's default init per model)."""

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.stack(
            [_uniform((in_features, out_features), bound, g, dtype) for g in generators]))
        self.bias = nn.Parameter(torch.stack([_uniform((out_features,), bound, g, dtype) for g in generators]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.weight.shape[0] or x.shape[2] != self.weight.shape[1]:
            raise ValueError(f"EnsembleLinear: expected input (M={self.weight.shape[0]}, B, "
                             f"{self.weight.shape[1]}), got {tuple(x.shape)}")
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)


class EnsembleMLP(nn.Module):
    """Stack of :class:`EnsembleLinear` with ReLU between layers; outputs logits (softmax is in the loss)."""

    def __init__(self, sizes: Sequence[int], generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layers = nn.ModuleList(
            EnsembleLinear(a, b, generators, dtype) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class HybridStudent(nn.Module):
    """Quantum circuit (exact engine) followed by a small classical head, for M models at once."""

    def __init__(self, student, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = ()):
        super().__init__()
        from .engine import QuantumLayer

        self.student = student
        self.quantum = QuantumLayer(student, len(generators), generators=list(generators), dtype=dtype)
        self.head = EnsembleMLP([student.n_outputs, *head_hidden, n_classes], generators, dtype)

    @property
    def encode(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Embedded input states ``(..., 2^n)`` of features ``(..., F)``: they do not depend on the
        weights, so the trainer embeds each data split once instead of at every step.

        Only advertised (``hasattr``) when the compiled circuit is encodable (all input parameters in
        the leading state preparation); otherwise AttributeError, and the trainer uses ``forward(x)``.
        """
        if not self.quantum.program.encodable:
            raise AttributeError("encode: the circuit's input parameters are not all in its leading "
                                 "state preparation; use forward(x)")
        return self.quantum.encode

    def circuit_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features the circuit embeds, ``(M, B, F')``: the raw features here (image students
        reduce them first). Backends and hardware jobs turn these into the circuit's input values."""
        return x

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(M, B, C)`` of raw features ``x`` ``(M, B, F)`` or of ``encoded`` states."""
        return self.head(self.quantum(x, encoded=encoded))


def _mlp_builder(hidden: Sequence[int]) -> Callable[..., nn.Module]:
    def build(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
        sizes = options.pop("hidden", list(hidden))
        if options:
            raise ValueError(f"options: unknown option(s) {sorted(options)} for an MLP (known: hidden)")
        return EnsembleMLP([n_features, *sizes, n_classes], generators, dtype)

    return build


def _quantum_builder(name: str) -> Callable[..., nn.Module]:
    def build(n_features: int, n_classes: int, generators, dtype=torch.float32, **options: Any) -> nn.Module:
        from .circuits import build_student

        n_qubits = options.pop("qubits", max(1, math.ceil(math.log2(n_features))))
        layers = options.pop("layers", 5)
        head_hidden = options.pop("head_hidden", [])
        backend = options.pop("backend", None)  # a profile: train through a Qiskit QNN (qkd_qiskit.qnn)
        gradient = options.pop("gradient", "auto")
        if options:
            raise ValueError(f"options: unknown option(s) {sorted(options)} for {name} "
                             "(known: qubits, layers, head_hidden, backend, gradient)")
        if 2 ** n_qubits < n_features:
            raise ValueError(f"options.qubits: {n_qubits} qubits cannot amplitude-embed {n_features} features")
        student = build_student(name, n_qubits=n_qubits, layers=layers, n_features=n_features)
        if backend is not None:
            from .backends import ProfileError
            from .qnn import QNNStudent

            try:
                return QNNStudent(student, n_classes, generators, dtype, head_hidden, backend, gradient)
            except ProfileError as err:
                raise ValueError(f"options.backend: {err}") from None
        return HybridStudent(student, n_classes, generators, dtype, head_hidden)

    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "teacher_mlp": _mlp_builder([16, 8]),
    "linear": _mlp_builder([]),
    **{name: _quantum_builder(name) for name in QUANTUM_MODELS},
}


def _image_builder(name: str) -> Callable[..., nn.Module]:
    def build(*args: Any, **options: Any) -> nn.Module:
        from .image_models import IMAGE_MODELS  # image models build on the classes above

        return IMAGE_MODELS[name](*args, **options)

    return build


IMAGE_MODEL_NAMES = ("lenet5", "hasan")
"""Image models (:mod:`qkd_qiskit.image_models`): the LeNet-5 teacher and the Hasan & Mahdy student."""

MODELS.update({name: _image_builder(name) for name in IMAGE_MODEL_NAMES})


def build_model(name: str, n_features: int, n_classes: int, generators: Sequence[torch.Generator],
                dtype: torch.dtype = torch.float32, **options: Any) -> nn.Module:
    """Build ``len(generators)`` independent models ``name``; model m is initialised from ``generators[m]``."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name](n_features, n_classes, list(generators), dtype, **dict(options))


def n_models(model: nn.Module) -> int:
    return next(model.parameters()).shape[0]


def count_params(model: nn.Module) -> int:
    """Trainable parameters of ONE model of the ensemble, counted from the module itself."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total // n_models(model)


def model_state(model: nn.Module, m: int) -> dict[str, torch.Tensor]:
    """The state of model ``m`` alone (the ``[m]`` slice of every tensor), ready for ``torch.save``."""
    return {k: v[m].detach().clone() for k, v in model.state_dict().items()}


def load_model_states(model: nn.Module, states: Sequence[dict[str, torch.Tensor]]) -> nn.Module:
    """Load one saved state per model into an ensemble built with ``len(states)`` models."""
    stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
    model.load_state_dict(stacked)
    return model
