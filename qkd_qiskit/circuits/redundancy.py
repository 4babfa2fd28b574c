"""Weights that can never change a student's output, found from the circuit's structure.

A student's outputs are Z-basis statistics of its read-out qubits (``<Z_q>`` or outcome
probabilities). A weight is *idle* when every gate it sits in is diagonal in the computational
basis (``rz``, ``rzz``, ``p``, ``cz``, ...) and everything after that gate which touches the qubits it
(or its consequences) reached is *monomial* (diagonal or a basis permutation: ``cx``, ``x``,
``swap``, further diagonal gates, Z-basis measurements), or acts outside the read-out's light cone.
Then the gate only multiplies basis states by phases, ``P D = (P D P^T) P`` keeps them phases, and
no Z-basis statistic sees them: the output, and its gradient, do not depend on the weight at all.
This is a sufficient test (it never calls a weight idle that matters); tests confirm it numerically
against the engine and ``Statevector`` finite differences.

In the paper's students these are hea's final RZ layer, universal's final RZZ ring, the RZZ gates
of q_nd's last layer and rot_layers' (the image students') last RZ layer.

Example:
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("q2")
    >>> len(st.weight_params), len(idle_weights(st))   # q2's last RZZ on the two read-out qubits
    (59, 1)
"""

from __future__ import annotations

from typing import Any

DIAGONAL = frozenset({"rz", "rzz", "p", "cp", "crz", "cz", "ccz", "z", "s", "sdg", "t", "tdg", "u1", "cu1",
                      "mcphase", "id", "global_phase"})
"""Gates diagonal in the computational basis for every parameter value."""

MONOMIAL = DIAGONAL | {"x", "y", "cx", "cy", "ccx", "swap", "cswap", "mcx"}
"""Diagonal gates and basis permutations (times phases): they map diagonal gates to diagonal gates."""

_PASSIVE = frozenset({"barrier", "delay", "measure"})  # a Z-basis measurement commutes with diagonals


def _weights_of(inst: Any, weights: set) -> set:
    found = set()
    for p in inst.operation.params:
        found |= set(getattr(p, "parameters", ())) & weights
    return found


def _reaches_readout(circuit: Any, start: int, readout: set[int]) -> bool:
    """Whether a diagonal gate at ``start`` can change a Z-basis statistic of ``readout`` qubits.

    ``phase`` qubits carry only basis-state phases from it; ``general`` qubits may carry anything.
    A phase meets a non-monomial gate: it becomes general on that gate's qubits; anything general
    spreads to every qubit a later gate touches. The output can change only if a read-out qubit
    ends general.
    """
    def qubits(inst: Any) -> set[int]:
        return {circuit.find_bit(q).index for q in inst.qubits}

    phase, general = qubits(circuit.data[start]), set()
    for inst in circuit.data[start + 1:]:
        qs, name = qubits(inst), inst.operation.name
        if name in _PASSIVE or not qs & (phase | general):
            continue
        if qs & general or name not in MONOMIAL:
            general |= qs
            phase -= qs
        else:
            phase |= qs
    return bool(general & readout)


def idle_weights(student: Any) -> list:
    """The weights of ``student`` (a :class:`~qkd_qiskit.circuits.StudentCircuit`) that cannot change
    its outputs, in ``weight_params`` order (see the module docstring)."""
    circuit = student.circuit
    weights = set(student.weight_params)
    readout = set(student.readout_qubits)
    live: set = set()
    seen: set = set()
    for i, inst in enumerate(circuit.data):
        used = _weights_of(inst, weights)
        if not used:
            continue
        seen |= used
        if inst.operation.name not in DIAGONAL or _reaches_readout(circuit, i, readout):
            live |= used
    return [w for w in student.weight_params if w in seen and w not in live]
