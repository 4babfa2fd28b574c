"""Classical-bit outcomes of measured circuits, by deferred measurement: the joint clbit outcome
of each basis state (:func:`clbit_map`), the outcomes that can occur (:func:`written_outcomes`)
and a register's marginal of the joint distribution (:func:`register_marginal`).

Bit ``c`` of a joint outcome is ``circuit.clbits[c]``; a clbit measured from qubit ``q`` holds
bit ``q`` of the basis index, clbits never written read 0. All bit manipulation is
:mod:`qkd_qiskit.readout`'s.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qkd_qiskit.engine import compile_circuit
    >>> qc = QuantumCircuit(2, 3)
    >>> _ = qc.measure(0, 2)
    >>> _ = qc.measure(1, 0)
    >>> program = compile_circuit(qc, (), (), readout_qubits=())
    >>> written_outcomes(program).tolist()  # clbit 1 is never written
    [0, 1, 4, 5]
    >>> clbit_matrix(program).argmax(1).tolist()  # basis 0b01 -> clbit 2 set, 0b10 -> clbit 0 set
    [0, 4, 1, 5]
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit

from ..engine import CompiledCircuit
from ..readout import marginal_matrix, outcome_index, spread_index

__all__ = ["clbit_map", "clbit_matrix", "register_marginal", "register_values", "written_outcomes"]

# program -> {(dtype, device): map}; CompiledCircuit hashes by identity, so the entries go with it
_CLBIT_MAPS: weakref.WeakKeyDictionary[CompiledCircuit, dict[tuple, torch.Tensor]] = weakref.WeakKeyDictionary()


def written_outcomes(program: CompiledCircuit) -> np.ndarray:
    """Joint clbit outcomes that can occur (unwritten clbits are always 0), in increasing order."""
    return spread_index(np.arange(2 ** len(program.clbit_qubits)), sorted(program.clbit_qubits))


def clbit_matrix(program: CompiledCircuit) -> np.ndarray:
    """One-hot ``(2^n, 2^c)``: basis state -> joint clbit outcome (deferred measurement)."""
    clbits = sorted(program.clbit_qubits)
    mat = np.zeros((2**program.n_qubits, 2**program.n_clbits))
    mat[:, written_outcomes(program)] = marginal_matrix(program.n_qubits, [program.clbit_qubits[c] for c in clbits])
    return mat


def clbit_map(program: CompiledCircuit, like: torch.Tensor) -> torch.Tensor:
    """:func:`clbit_matrix` in the dtype/device of ``like``; cached while ``program`` lives."""
    maps = _CLBIT_MAPS.setdefault(program, {})
    key = (like.dtype, like.device)
    if key not in maps:
        maps[key] = torch.as_tensor(clbit_matrix(program), dtype=like.dtype, device=like.device)
    return maps[key]


def register_values(outcomes: Any, circuit: QuantumCircuit, creg: Any) -> np.ndarray:
    """Value of register ``creg`` in joint clbit outcomes of ``circuit``."""
    return outcome_index(outcomes, [circuit.find_bit(b).index for b in creg])


def register_marginal(dist: np.ndarray, circuit: QuantumCircuit, creg: Any) -> np.ndarray:
    """Marginal ``(..., 2^size)`` of register ``creg`` from joint clbit distributions ``(..., 2^c)``."""
    return dist @ marginal_matrix(circuit.num_clbits, [circuit.find_bit(b).index for b in creg])
