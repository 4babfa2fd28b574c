"""Index layouts: the bits of the ``2^n`` basis states (compile time) and the engine's internal
state layout ``(M, A, B, L)`` (run time).

Basis indices follow :mod:`qkd_qiskit.readout` (little-endian, as in Qiskit). Internally a state is
kept as ``(M, A, B, L)``: models, the ``A = 2^(n-h)`` values of the high qubits, the batch, and the
``L = 2^h`` values of the low qubits, so a tensor product ``K_hi (x) K_lo`` acts as two plain
``bmm`` calls with no copies. The public layout is ``(M, B, 2^n)``.

Example:
    >>> import torch
    >>> lay = Layout(3)
    >>> lay.local_index((2, 0)).tolist()          # outcome index of qubits (2, 0)
    [0, 2, 0, 2, 1, 3, 1, 3]
    >>> lay.expand_src((0, 1), np.array([1, 0, 2, 3])).tolist()   # swap |00> and |01> on qubits 0, 1
    [1, 0, 2, 3, 5, 4, 6, 7]
    >>> psi = torch.arange(8.0).reshape(1, 2, 1, 4)     # h = 2: A = 2, B = 1, L = 4
    >>> batch_major(psi).tolist()
    [[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]]
    >>> torch.equal(internal(batch_major(psi), h=2), psi)
    True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..readout import basis_bits, outcome_index, spread_index

__all__ = ["Layout", "batch_major", "internal"]


class Layout:
    """Bit tables of the 2^n basis states (compile time)."""

    def __init__(self, n: int):
        self.n = n
        self.idx = np.arange(2**n)
        self.bits = basis_bits(n)

    def local_index(self, qubits: Sequence[int]) -> np.ndarray:
        """Per basis state, the index ``sum_j bit(qubits[j]) << j`` of its bits on ``qubits``."""
        return outcome_index(self.idx, qubits)

    def expand_src(self, qubits: Sequence[int], src: np.ndarray) -> np.ndarray:
        """Full-register source index of a permutation acting on ``qubits``."""
        mask = sum(1 << q for q in qubits)
        return (self.idx & ~mask) | spread_index(src[self.local_index(qubits)], qubits)


def batch_major(x: torch.Tensor) -> torch.Tensor:
    """(M, A, B, L) -> (M, B, A*L): the public (model, sample, basis index) layout."""
    m, hi, b, lo = x.shape[:4]
    return x.transpose(1, 2).reshape(m, b, hi * lo, *x.shape[4:])


def internal(x: torch.Tensor, h: int) -> torch.Tensor:
    """(M, B, 2^n) -> (M, A, B, L) with ``L = 2^h``: inverse of :func:`batch_major` (contiguous)."""
    m, b, size = x.shape
    lo = 2**h
    return x.reshape(m, b, size // lo, lo).transpose(1, 2).contiguous()
