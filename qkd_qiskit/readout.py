"""Read-out conventions: one home for how qubits, classical bits and outcomes are indexed.

Everything in the package follows Qiskit's little-endian order:

* basis index ``i = sum_q bit_q(i) << q`` (the bit of qubit ``q`` is bit ``q`` of ``i``);
* a read-out over qubits ``(q_0, .., q_{k-1})`` has outcome index ``sum_j bit_{q_j} << j``;
* the ``<Z>`` of read-out qubit ``j`` is ``sum_o p(o) (1 - 2 bit_j(o))``.

The engine, the primitives, the QNNs and every backend build their tables from these helpers, so
the convention cannot drift between them.

Example:
    >>> outcome_index(np.array([0b100, 0b010, 0b110]), qubits=(1, 2))
    array([2, 1, 3])
    >>> z_signs(2)
    array([[ 1.,  1.],
           [-1.,  1.],
           [ 1., -1.],
           [-1., -1.]])
    >>> marginal_matrix(2, qubits=(1,)).astype(int).tolist()
    [[1, 0], [1, 0], [0, 1], [0, 1]]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MEAS_REGISTER = "meas"
"""Classical register of a student's measurements: qubit ``q`` is measured into ``meas[q]``."""


def basis_bits(n: int) -> np.ndarray:
    """``(2^n, n)`` int array: ``bits[i, q]`` is the bit of qubit ``q`` in basis index ``i``."""
    idx = np.arange(2**n)
    return (idx[:, None] >> np.arange(n)[None, :]) & 1


def remap_bits(values: Any, moves: Sequence[tuple[int, int]]) -> np.ndarray:
    """Integers built from bit ``src`` of each value placed at bit ``dst``, for every ``(src, dst)``."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros_like(values)
    for src, dst in moves:
        out |= ((values >> src) & 1) << dst
    return out


def outcome_index(values: Any, qubits: Sequence[int]) -> np.ndarray:
    """Outcome index ``sum_j bit_{qubits[j]}(value) << j`` of integer basis/register values."""
    return remap_bits(values, [(q, j) for j, q in enumerate(qubits)])


def spread_index(outcomes: Any, positions: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`outcome_index`: put bit ``j`` of each outcome at bit ``positions[j]``."""
    return remap_bits(outcomes, [(j, p) for j, p in enumerate(positions)])


def z_signs(k: int) -> np.ndarray:
    """``(2^k, k)`` matrix of ``1 - 2 bit_j(outcome)``: ``<Z_j> = probs @ z_signs(k)``."""
    return 1.0 - 2.0 * basis_bits(k)


def marginal_matrix(n: int, qubits: Sequence[int]) -> np.ndarray:
    """One-hot ``(2^n, 2^k)``: ``probs @ M`` is the marginal distribution over ``qubits``."""
    out = outcome_index(np.arange(2**n), qubits)
    return np.eye(2 ** len(qubits))[out]


def readout_table(n: int, qubits: Sequence[int], readout: str) -> np.ndarray:
    """``(2^n, n_outputs)`` table mapping basis probabilities to a student's read-out:
    ``<Z_q>`` per read-out qubit (``readout == "z"``) or the outcome probabilities (``"probs"``)."""
    if readout == "z":
        return (1 - 2 * basis_bits(n)[:, list(qubits)]).astype(float)
    if readout == "probs":
        return marginal_matrix(n, qubits)
    raise ValueError(f"readout must be 'z' or 'probs', got {readout!r}")


def probs_to_readouts(readout: str, probs: np.ndarray) -> np.ndarray:
    """Read-out outcome probabilities ``(N, 2^k)`` -> the student's outputs ``(N, n_outputs)``."""
    if readout == "probs":
        return probs
    return probs @ z_signs(int(np.log2(probs.shape[-1])))


def counts_distribution(counts: dict[str, float], qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """Empirical read-out probabilities ``(2^k,)`` from ``meas`` counts (Qiskit bitstrings,
    ``meas[n-1]`` leftmost); only the bits of ``qubits`` are kept.

    Example:
        >>> counts_distribution({"10": 3, "01": 1}, qubits=(1,), n_qubits=2).tolist()
        [0.25, 0.75]
    """
    probs = np.zeros(2 ** len(qubits))
    for key, c in counts.items():
        value = int(key.replace(" ", "")[-n_qubits:], 2)
        probs[int(outcome_index(value, qubits))] += c
    return probs / probs.sum()


def bits_distribution(bits: Any, qubits: Sequence[int]) -> np.ndarray:
    """Empirical read-out probabilities ``(N, 2^k)`` from a sampler's ``meas`` ``BitArray`` of shape
    ``(N,)``; only the bits of ``qubits`` are kept.

    Example:
        >>> from qiskit.primitives import BitArray
        >>> bits = BitArray.from_samples(["10", "10", "10", "01"], num_bits=2).reshape(1, 4)
        >>> bits_distribution(bits, qubits=(1,)).tolist()
        [[0.25, 0.75]]
    """
    flags = np.asarray(bits.to_bool_array(order="little"), dtype=np.int64)  # (N, shots, n): [..., q] = meas[q]
    outcomes = outcome_index(flags @ (1 << np.arange(flags.shape[-1])), qubits)
    counts = np.stack([np.bincount(row, minlength=2 ** len(qubits)) for row in outcomes.reshape(-1, flags.shape[-2])])
    return counts / counts.sum(1, keepdims=True)


def measured_never_reused(circuit: Any) -> bool:
    """True if no instruction acts on a qubit after it was measured (except further measurements).

    Then dropping the measurements leaves every read-out marginal unchanged (deferred measurement),
    which the engine, the QNNs and the density-matrix fast path all rely on.
    """
    measured: set[int] = set()
    for inst in circuit.data:
        qs = {circuit.find_bit(q).index for q in inst.qubits}
        if inst.operation.name == "measure":
            measured |= qs
        elif qs & measured:
            return False
    return True
