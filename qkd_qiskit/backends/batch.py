"""One evaluation batch, shared by every backend kind: input checks, parameter bindings, and the
sampler bits / outcome probabilities -> student read-outs (conventions of :mod:`qkd_qiskit.readout`).

Example:
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("hea", n_qubits=2, layers=1)  # <Z_0>, <Z_1>
    >>> probs_to_readouts(st, np.array([[0.5, 0.5, 0.0, 0.0]])).tolist()
    [[0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit import QuantumCircuit

from .. import readout


def probs_to_readouts(student: Any, probs: np.ndarray) -> np.ndarray:
    """Read-out outcome probabilities (N, 2^k) -> the student's outputs (N, n_outputs)."""
    return readout.probs_to_readouts(student.readout, probs)


def bits_to_probs(student: Any, bits: Any) -> np.ndarray:
    """Empirical read-out distribution (N, 2^k) from the ``meas`` BitArray (shape (N,)) of a sampler."""
    return readout.bits_distribution(bits, student.readout_qubits)


def check_batch(student: Any, weights: Any, angles: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one weight vector (n_weights,) and input angles (N, n_inputs) as finite float arrays."""
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(angles, dtype=np.float64)
    if w.shape != (len(student.weight_params),):
        raise ValueError(f"weights: expected shape ({len(student.weight_params)},), got {w.shape}")
    if a.ndim != 2 or a.shape[1] != len(student.input_params) or len(a) == 0:
        raise ValueError(f"angles: expected shape (N>0, {len(student.input_params)}), got {a.shape}")
    if not (np.isfinite(w).all() and np.isfinite(a).all()):
        raise ValueError("weights/angles: non-finite values (NaN or inf)")
    return w, a


def bindings(circuit: QuantumCircuit, student: Any, weights: np.ndarray, angles: np.ndarray) -> dict:
    """Parameter values of ``circuit`` (N sets) as a BindingsArray-style dict ``{params: (N, P)}``."""
    order = list(student.input_params) + list(student.weight_params)
    values = np.hstack([angles, np.broadcast_to(weights, (len(angles), len(weights)))])
    present = set(circuit.parameters)
    keep = [i for i, p in enumerate(order) if p in present]
    return {tuple(order[i] for i in keep): values[:, keep]}
