"""The torch layer :class:`QuantumLayer`: ``M`` independent trainable copies of a student circuit.

Example:
    >>> import torch
    >>> from qkd_qiskit.circuits import build_student
    >>> layer = QuantumLayer(build_student("hea"), n_models=2,
    ...                      generators=[torch.Generator().manual_seed(s) for s in (0, 1)])
    >>> layer.weights.shape, layer(torch.rand(2, 32, 64)).shape
    (torch.Size([2, 72]), torch.Size([2, 32, 6]))
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..circuits import initial_weights
from .compiler import compile_student
from .settings import Mode

__all__ = ["QuantumLayer"]


class QuantumLayer(nn.Module):
    """``M`` independent copies of a student circuit: raw features (M, B, F) -> readout (M, B, n_out).

    ``weights`` is one Parameter (M, n_weights); model m is initialised uniformly in [0, 2 pi) from
    ``generators[m]`` alone (drawn in float64 on CPU, then cast: :func:`~qkd_qiskit.circuits.initial_weights`),
    so its initial weights do not depend on the other models nor on the layer's dtype beyond rounding.
    """

    def __init__(self, student: Any, n_models: int = 1, generators: Sequence[torch.Generator] | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 mode: Mode = "auto"):
        super().__init__()
        if generators is not None and len(generators) != n_models:
            raise ValueError(f"QuantumLayer: {len(generators)} generators for {n_models} models")
        self.student = student
        self.program = compile_student(student, mode)
        gens = list(generators) if generators is not None else [None] * n_models
        self.weights = nn.Parameter(initial_weights(self.program.n_weights, gens, dtype=dtype, device=device))

    @property
    def n_models(self) -> int:
        return self.weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.program.n_outputs

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """Input angles (M, B, n_inputs) of raw features (M, B, F), via ``student.input_angles``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=self.weights.dtype, device=self.weights.device)
        if x.dim() != 3 or x.shape[0] != self.n_models:
            raise ValueError(f"QuantumLayer: expected features (M={self.n_models}, B, F), got {tuple(x.shape)}")
        m, b, f = x.shape
        a = self.student.input_angles(x.reshape(m * b, f).to(self.weights.dtype))
        return a.reshape(m, b, -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input states ``(..., 2^n)`` of raw features ``(..., F)``, independent of the
        weights: encode a data set once, then train with ``layer(encoded=enc[idx])``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=self.weights.dtype, device=self.weights.device)
        lead, f = x.shape[:-1], x.shape[-1]
        angles = self.student.input_angles(x.reshape(-1, f).to(self.weights.dtype))
        return self.program.encode(angles).reshape(*lead, -1)

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Readout (M, B, n_outputs) of raw features ``x`` (M, B, F) or of ``encoded`` states."""
        if encoded is not None:
            return self.program.forward_encoded(encoded, self.weights)
        return self.program(self.angles(x), self.weights)
