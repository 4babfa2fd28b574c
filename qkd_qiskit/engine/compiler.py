"""The public constructors :func:`compile_circuit` and :func:`compile_student`, with a cache of
compiled circuits keyed by circuit identity.

Example:
    >>> from qiskit import QuantumCircuit
    >>> qc = QuantumCircuit(2)
    >>> compile_circuit(qc) is compile_circuit(qc), compile_circuit(qc, cache=False) is compile_circuit(qc)
    (True, False)
"""

from __future__ import annotations

import weakref
from typing import Any, Literal, Sequence

from qiskit.circuit import Parameter, QuantumCircuit

from .compiled import CompiledCircuit
from .settings import Mode

__all__ = ["compile_circuit", "compile_student"]

_COMPILED: dict[tuple, tuple[weakref.ref, CompiledCircuit]] = {}


def compile_circuit(circuit: QuantumCircuit, input_params: Sequence[Parameter] = (),
                    weight_params: Sequence[Parameter] = (), readout_qubits: Sequence[int] | None = None,
                    readout: Literal["z", "probs"] = "z", mode: Mode = "auto",
                    cache: bool = True) -> CompiledCircuit:
    """Compile ``circuit`` once for exact simulation (cached by circuit identity).

    ``readout="z"`` returns <Z_q> per readout qubit (default all qubits); ``"probs"`` the
    ``2^k`` outcome probabilities of the readout qubits, index ``sum_j bit(readout_qubits[j]) << j``.
    """
    key = (id(circuit), tuple(input_params), tuple(weight_params),
           None if readout_qubits is None else tuple(readout_qubits), readout, mode)
    hit = _COMPILED.get(key) if cache else None
    if hit is not None and hit[0]() is circuit:
        return hit[1]
    prog = CompiledCircuit(circuit, input_params, weight_params, readout_qubits, readout, mode)
    if cache:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[key] = (weakref.ref(circuit), prog)
    return prog


def compile_student(student: Any, mode: Mode = "auto") -> CompiledCircuit:
    """Compile a :class:`~qkd_qiskit.circuits.StudentCircuit` (its circuit, params and readout)."""
    return compile_circuit(student.circuit, student.input_params, student.weight_params,
                           student.readout_qubits, student.readout, mode)
