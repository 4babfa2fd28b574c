"""The hybrid student over any backend: the student circuit as a Qiskit QNN (through
qiskit-machine-learning's ``TorchConnector``, :mod:`qkd_qiskit.qnn`) then the same head as
:class:`~qkd_qiskit.models.hybrid.HybridStudent`; ``state_dict`` keys equal the engine student's, so
checkpoints load either way.

Example:
    >>> gens = [torch.Generator().manual_seed(0)]
    >>> net = QNNStudent.build("hea", n_features=4, n_classes=3, generators=gens, backend="statevector",
    ...                        layers=1)
    >>> net(torch.rand(1, 5, 4)).shape
    torch.Size([1, 5, 3])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..backends import Backend, Profile, prepare_backend
from ..circuits import build_student
from ..qnn import Gradient, QNNLayer
from .ensemble import EnsembleMLP


class QNNStudent(nn.Module):
    """Hybrid student over a backend: :class:`QNNLayer` then the same head as ``HybridStudent``."""

    def __init__(self, student: Any, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = (),
                 backend: str | Profile | Backend | None = None, gradient: Gradient = "auto"):
        super().__init__()
        if gradient not in ("auto", "param_shift", "spsa"):
            raise ValueError(f"options.gradient: must be auto, param_shift or spsa, got {gradient!r}")
        be = backend if isinstance(backend, Backend) else prepare_backend(backend, [student])
        self.student = student
        self.quantum = QNNLayer(student, len(generators), generators, dtype, be, gradient)
        self.head = EnsembleMLP([student.n_outputs, *head_hidden, n_classes], generators, dtype)

    @classmethod
    def build(cls, name: str, n_features: int, n_classes: int, generators: Sequence[torch.Generator],
              dtype: torch.dtype = torch.float32, backend: str | Profile | Backend | None = None,
              gradient: Gradient = "auto", qubits: int | None = None, layers: int = 5,
              head_hidden: Sequence[int] = ()) -> "QNNStudent":
        """By architecture name, with the defaults of the model registry (qubits = ceil(log2 F))."""
        n_qubits = qubits or max(1, math.ceil(math.log2(n_features)))
        student = build_student(name, n_qubits=n_qubits, layers=layers, n_features=n_features)
        return cls(student, n_classes, generators, dtype, head_hidden, backend, gradient)

    @classmethod
    def from_hybrid(cls, hybrid: nn.Module, backend: str | Profile | Backend | None,
                    gradient: Gradient = "auto") -> "QNNStudent":
        """A QNN student with the weights of an engine ``HybridStudent`` (same circuit, same order)."""
        m = hybrid.quantum.weights.shape[0]
        sizes = [layer.weight.shape[1] for layer in hybrid.head.layers] + [hybrid.head.layers[-1].weight.shape[2]]
        net = cls(hybrid.student, sizes[-1], [torch.Generator() for _ in range(m)], hybrid.quantum.weights.dtype,
                  sizes[1:-1], backend, gradient)
        net.load_state_dict(hybrid.state_dict())
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.quantum(x))
