"""Pauli transfer matrices (PTMs): every gate and noise channel of a device as a real matrix.

A k-qubit state is held as its Pauli vector ``r_P = Tr(P rho)`` (``4^k`` reals, ``r_I = 1``),
Pauli index ``sum_q p_q 4^q`` with ``p = 0, 1, 2, 3`` for ``I, X, Y, Z`` and qubit 0 least
significant (Qiskit's :class:`~qiskit.quantum_info.PTM` order). A channel acts as
``r' = R r`` with ``R_PQ = Tr(P E(Q)) / 2^k``, so noisy simulation is real arithmetic and an
observable ``Z_S`` is read as ``r_{Z_S}``.

Every matrix comes from Qiskit: gates through :class:`~qiskit.quantum_info.Operator`, noise
through Aer's public ``QuantumError.to_quantumchannel()``; nothing is hand-derived except the
rotation form below, which is *checked* numerically for each gate.

A one-parameter rotation gate ``exp(-i theta G / 2)`` (``rz``, ``rx``, ``rzz``, ...) has
``R(theta) = B + cos(theta) C + sin(theta) S`` (its Pauli generator squares to one), so a
trainable gate is three constant matrices and an angle (:func:`rotation_form`).

Example:
    >>> from qiskit.circuit.library import RZGate, XGate
    >>> np.round(gate_ptm(XGate()).diagonal(), 6).tolist()
    [1.0, 1.0, -1.0, -1.0]
    >>> b, c, s = rotation_form(RZGate(0.0))
    >>> np.allclose(b + np.cos(0.3) * c + np.sin(0.3) * s, gate_ptm(RZGate(0.3)))
    True
    >>> rho = np.diag([1.0, 0.0]).astype(complex)        # |0><0|: <I> = 1, <Z> = 1
    >>> pauli_vectors(rho[None]).tolist()
    [[1.0, 0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.quantum_info import PTM, Operator

PAULI_MATRICES = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
"""``I, X, Y, Z`` in the order of the Pauli index."""


def real_ptm(channel: Any) -> np.ndarray:
    """The real PTM of anything :class:`~qiskit.quantum_info.PTM` accepts (imaginary part checked ~0)."""
    data = np.asarray(PTM(channel).data)
    if np.abs(data.imag).max(initial=0.0) > 1e-9:
        raise ValueError("real_ptm: the channel's PTM is not real (not a valid quantum channel?)")
    return np.ascontiguousarray(data.real)


def gate_ptm(gate: Any) -> np.ndarray:
    """PTM of a gate with numeric parameters (``Operator(gate)``)."""
    return real_ptm(Operator(gate))


def bound_gate(gate: Any, value: float) -> Any:
    """A copy of a one-parameter gate with its parameter set to ``value``."""
    g = gate.copy()
    g.params = [float(value)]
    return g


def rotation_form(gate: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B, C, S)`` with ``PTM(theta) = B + cos(theta) C + sin(theta) S`` for a one-parameter
    rotation gate, from its PTMs at 0, pi/2 and pi; verified at two more angles (a gate not of this
    form is a ValueError)."""
    if len(gate.params) != 1:
        raise ValueError(f"rotation_form: {gate.name} has {len(gate.params)} parameters; only "
                         "one-parameter rotation gates can be trained through noise")
    r0, r1, r2 = (gate_ptm(bound_gate(gate, t)) for t in (0.0, np.pi / 2, np.pi))
    b, c = (r0 + r2) / 2, (r0 - r2) / 2
    s = r1 - b
    for t in (0.37, -2.1):
        if not np.allclose(b + np.cos(t) * c + np.sin(t) * s, gate_ptm(bound_gate(gate, t)), atol=1e-12):
            raise ValueError(f"rotation_form: {gate.name} is not a rotation exp(-i theta G / 2) with G^2 = 1")
    return b, c, s


def pauli_vectors(rho: np.ndarray) -> np.ndarray:
    """Pauli vectors ``(N, 4^k)`` of density matrices ``(N, 2^k, 2^k)``: ``r_P = Tr(P rho)``,
    one small contraction per qubit (``O(N k 4^k)``, not a ``4^k x 4^k`` matrix)."""
    n, dim = rho.shape[0], rho.shape[1]
    k = dim.bit_length() - 1
    t = rho.reshape(n, *([2] * (2 * k)))  # row bits (axis 1 + k-1-q), then column bits
    # Tr(P rho) = sum_ij P_ji rho_ij; contract qubit k-1 first so the Pauli axes end up in C order
    for q in range(k - 1, -1, -1):
        # the row and column axes of qubit q are always at positions 1 and 1 + (q + 1) here
        t = np.einsum("pji,nij...->n...p", PAULI_MATRICES, np.moveaxis(t, (1, 1 + q + 1), (1, 2)))
    return np.ascontiguousarray(t.reshape(n, 4**k).real)
