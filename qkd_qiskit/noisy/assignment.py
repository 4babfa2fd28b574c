"""Read-out errors of the device as an affine map from Z-string expectations to student outputs.

Read-out errors are classical and per qubit (``P[measured, true]``, checked by
:func:`qkd_qiskit.backends.measurement_noise_is_classical`), so a student's noisy outputs are an
affine function of a few noiseless-read-out expectations: ``<Z_q>`` of each read-out qubit for a
``"z"`` student (``out_q = alpha_q + beta_q <Z_q>``), or every Z-string ``<Z_S>`` over the ``k``
read-out qubits for a ``"probs"`` student (Walsh-Hadamard to the ``2^k`` probabilities, then the
Kronecker product of the assignment matrices). :class:`ReadoutMap` holds the observables to
propagate and ``out = values @ matrix.T + bias``.

Example:
    >>> flip = [np.array([[0.9, 0.2], [0.1, 0.8]])]          # P[measured, true] of one qubit
    >>> rm = ReadoutMap.build("z", [3], flip)
    >>> rm.observables, (rm.matrix.round(3).tolist(), rm.bias.round(3).tolist())
    ([[3]], ([[0.7]], [0.1]))
    >>> rm = ReadoutMap.build("probs", [0, 1], [np.eye(2), np.eye(2)])
    >>> rm.observables, (np.array([1.0, 1.0, 1.0]) @ rm.matrix.T + rm.bias).tolist()   # |00>: p = (1, 0, 0, 0)
    ([[0], [1], [0, 1]], [1.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..backends import apply_readout_errors


@dataclass(frozen=True)
class ReadoutMap:
    """Observables (lists of compact qubits, one Z-string each) and the affine map to the outputs."""

    observables: list[list[int]]
    matrix: np.ndarray
    bias: np.ndarray

    @classmethod
    def build(cls, readout: str, positions: Sequence[int], matrices: Sequence[np.ndarray]) -> "ReadoutMap":
        """From the student's read-out kind, the compact qubit of each read-out qubit and each one's
        assignment matrix ``P[measured, true]``."""
        if readout == "z":
            a = np.asarray(matrices, dtype=np.float64)
            up, down = a[:, 0, 0] - a[:, 1, 0], a[:, 0, 1] - a[:, 1, 1]  # <Z> measured of true |0>, |1>
            return cls([[p] for p in positions], np.diag((up - down) / 2), (up + down) / 2)
        k = len(positions)
        subsets = range(1, 2**k)
        observables = [[positions[j] for j in range(k) if s >> j & 1] for s in subsets]
        parity = np.array([[bin(o & s).count("1") % 2 for s in range(2**k)] for o in range(2**k)])
        walsh = (1.0 - 2.0 * parity) / 2**k  # true probabilities from (1, <Z_S> ...)
        full = apply_readout_errors(np.eye(2**k), matrices).T @ walsh
        return cls(observables, full[:, 1:], full[:, 0])
