"""The multiplexed (uniformly controlled) RY gate of the amplitude embedding, with an exact RY + CX
definition in Gray-code order (Mottonen et al.), so it transpiles to any device.

Example:
    >>> import numpy as np
    >>> from qiskit.quantum_info import Operator
    >>> g = MuxRYGate(1, [0.3, 1.1])
    >>> np.allclose(Operator(g).data, np.asarray(g))
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from qiskit.circuit import Gate, QuantumCircuit


def _gray(i: int) -> int:
    return i ^ (i >> 1)


def _gray_switch(i: int, k: int) -> int:
    """Index of the control bit that flips between Gray codes ``g_i`` and ``g_{i+1 mod 2^k}``."""
    return (_gray(i) ^ _gray((i + 1) % (1 << k))).bit_length() - 1


def _walsh_gray_angles(thetas: Sequence[Any]) -> list[Any]:
    """Angles ``phi`` of the RY/CX ladder: ``theta_c = sum_i (-1)^{popcount(c & g_i)} phi_i``.

    The sign matrix is a (row-permuted) Walsh-Hadamard matrix ``M`` with ``M^T M = 2^k I``, so
    ``phi = M^T theta / 2^k``; works on floats and on ``Parameter`` objects alike.
    """
    size = len(thetas)
    phis = []
    for i in range(size):
        g = _gray(i)
        terms = [t if bin(c & g).count("1") % 2 == 0 else -t for c, t in enumerate(thetas)]
        phis.append(sum(terms[1:], terms[0]) / size)
    return phis


class MuxRYGate(Gate):
    """Multiplexed (uniformly controlled) RY: ``k`` controls, then the target (last qubit).

    For the control basis state ``c = sum_j bit(qubit j) << j`` it applies ``RY(params[c])`` to the
    target, so ``params`` holds ``2**k`` angles. Its definition is the Mottonen RY/CX ladder
    (``2**k`` RY and ``2**k`` CX for ``k >= 1``; the RY angles are linear expressions of the params),
    which is what ``Statevector``, ``transpile``, Aer, QPY and Runtime see.

    Example:
        >>> from qiskit.quantum_info import Operator
        >>> Operator(MuxRYGate(1, [0.3, -1.2])).dim
        (4, 4)
    """

    def __init__(self, num_controls: int, params: Sequence[Any], label: str | None = None) -> None:
        if num_controls < 0:
            raise ValueError(f"MuxRYGate: num_controls must be >= 0, got {num_controls}")
        if len(params) != 2**num_controls:
            raise ValueError(
                f"MuxRYGate: {num_controls} controls need {2**num_controls} angles, got {len(params)}"
            )
        super().__init__("mux_ry", num_controls + 1, list(params), label=label)

    @property
    def num_controls(self) -> int:
        return self.num_qubits - 1

    def _define(self) -> None:
        k = self.num_controls
        qc = QuantumCircuit(k + 1, name=self.name)
        if k == 0:
            qc.ry(self.params[0], 0)
        else:
            for i, phi in enumerate(_walsh_gray_angles(self.params)):
                qc.ry(phi, k)
                qc.cx(_gray_switch(i, k), k)
        self.definition = qc

    def inverse(self, annotated: bool = False) -> "MuxRYGate":
        return MuxRYGate(self.num_controls, [-p for p in self.params])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Block-diagonal matrix (for bound params): index = control state + 2**k * target bit."""
        if copy is False:
            raise ValueError("unable to avoid copy while creating an array as requested")
        size = 2**self.num_controls
        half = np.array([float(p) for p in self.params]) / 2
        mat = np.zeros((2 * size, 2 * size))
        idx = np.arange(size)
        mat[idx, idx] = mat[idx + size, idx + size] = np.cos(half)
        mat[idx + size, idx] = np.sin(half)
        mat[idx, idx + size] = -np.sin(half)
        return mat.astype(dtype) if dtype is not None else mat
