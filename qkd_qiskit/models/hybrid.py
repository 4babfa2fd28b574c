"""The engine-backed hybrid student: circuit (exact engine, :class:`~qkd_qiskit.engine.QuantumLayer`)
followed by a small classical head, for M models at once.

Example:
    >>> from qkd_qiskit.circuits import build_student
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> net = HybridStudent(build_student("hea", n_qubits=2, layers=1), 3, gens)
    >>> net(torch.rand(2, 5, 4)).shape
    torch.Size([2, 5, 3])
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..engine import QuantumLayer
from .embedding_fit import attach_embedding_terms
from .ensemble import EnsembleMLP
from .readout_norm import ReadoutNorm


class HybridStudent(nn.Module):
    """Quantum circuit (exact engine) followed by a small classical head, for M models at once.

    ``readout_norm`` (``none``, ``batch``, ``affine``): a :class:`~.readout_norm.ReadoutNorm` between
    circuit and head. A student with an approximate embedding keeps its Walsh terms in the
    ``embedding_terms`` buffer (:func:`~.embedding_fit.attach_embedding_terms`)."""

    def __init__(self, student, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = (), readout_norm: str = "none"):
        super().__init__()
        self.student = student
        self.quantum = QuantumLayer(student, len(generators), generators=list(generators), dtype=dtype)
        self.readout_norm = (None if readout_norm == "none"
                             else ReadoutNorm(readout_norm, student.n_outputs, len(generators), dtype))
        self.head = EnsembleMLP([student.n_outputs, *head_hidden, n_classes], generators, dtype)
        attach_embedding_terms(self, student, len(generators))

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

    def readout_logits(self, readouts: torch.Tensor, statistics=None) -> torch.Tensor:
        """Logits ``(M, B, C)`` of circuit read-outs ``(M, B, n_outputs)``: the read-out normalisation
        (if any; ``statistics`` ``(mean, var)`` replace its own, see :class:`~.readout_norm.ReadoutNorm`),
        then the head."""
        if self.readout_norm is not None:
            readouts = self.readout_norm(readouts, statistics)
        return self.head(readouts)

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(M, B, C)`` of raw features ``x`` ``(M, B, F)`` or of ``encoded`` states."""
        return self.readout_logits(self.quantum(x, encoded=encoded))
