"""Trainable ansatzes of the students: ``hea`` (Qiskit's ``efficient_su2``), ``universal`` (RX, RY on
every qubit + RZZ on a ring), ``q_nd`` (universal layers with mid-circuit measurements) and
``rot_layers``. Each is a plain function returning a circuit whose weights are one
``ParameterVector`` named ``"w"``.

Example:
    >>> hea(6, 5).num_parameters, universal(6, 5).num_parameters
    (72, 90)
"""

from __future__ import annotations

from typing import Sequence

from qiskit.circuit import ClassicalRegister, Parameter, ParameterVector, QuantumCircuit
from qiskit.circuit.library import efficient_su2, n_local

from ..readout import MEAS_REGISTER


def rot_layers(n_qubits: int = 4, layers: int = 3) -> QuantumCircuit:
    """Per layer RX, RY, RZ on every qubit, then a CX ring (0->1, ..., n-1 -> 0): ``3 n L`` weights.

    Layer weights in order: qubit 0's RX, RY, RZ, then qubit 1's, ... (the Hasan & Mahdy student).

    Example:
        >>> rot_layers(4, 2).num_parameters
        24
    """
    w = ParameterVector("w", 3 * n_qubits * layers)
    qc = QuantumCircuit(n_qubits, name="rot_layers")
    k = 0
    for _ in range(layers):
        for q in range(n_qubits):
            qc.rx(w[k], q)
            qc.ry(w[k + 1], q)
            qc.rz(w[k + 2], q)
            k += 3
        for a, b in _ring(n_qubits):
            qc.cx(a, b)
    return qc


def _ring(m: int) -> list[tuple[int, int]]:
    """Neighbouring pairs of a ring on m qubits: (0,1), ..., (m-2,m-1), (m-1,0); one pair for m=2."""
    if m < 2:
        return []
    return [(i, i + 1) for i in range(m - 1)] + ([(m - 1, 0)] if m > 2 else [])


def universal_layer_size(m: int) -> int:
    """Weights of one universal layer on m active qubits: RX + RY per qubit, RZZ per ring pair."""
    return 2 * m + len(_ring(m))


def _universal_layer(m: int, weights: Sequence[Parameter]) -> QuantumCircuit:
    """One universal layer on m qubits (weights: RX q0..q(m-1), RY q0..q(m-1), RZZ ring pairs)."""
    entanglement = _ring(m)
    block = n_local(
        m, ["rx", "ry"], "rzz" if entanglement else [], entanglement=entanglement, reps=1,
        skip_final_rotation_layer=True, parameter_prefix="t",
    )
    return block.assign_parameters(dict(zip(block.parameters, weights)))


def hea(n_qubits: int = 6, layers: int = 5) -> QuantumCircuit:
    """Hardware-efficient ansatz: ``efficient_su2`` with RY, RZ and a linear CX chain.

    Per layer RY then RZ on every qubit, then CX(0,1), CX(1,2), ...; ``efficient_su2`` adds a final
    RY/RZ rotation layer, so there are ``2 n (layers + 1)`` weights (72 for n=6, L=5).

    Example:
        >>> hea(6, 5).num_parameters
        72
    """
    return efficient_su2(
        n_qubits, su2_gates=["ry", "rz"], entanglement="linear", reps=layers,
        parameter_prefix="w", name="hea",
    )


def universal(n_qubits: int = 6, layers: int = 5) -> QuantumCircuit:
    """Universal ansatz (Larocca et al.): per layer RX and RY on every qubit, RZZ on a ring.

    Layer weights in order: RX on qubits 0..n-1, RY on qubits 0..n-1, RZZ on (0,1), ..., (n-1,0).

    Example:
        >>> universal(6, 5).num_parameters
        90
    """
    size = universal_layer_size(n_qubits)
    w = ParameterVector("w", layers * size)
    qc = QuantumCircuit(n_qubits, name="universal")
    for j in range(layers):
        qc.compose(_universal_layer(n_qubits, w[j * size : (j + 1) * size]), inplace=True)
    return qc


def q_nd_active_qubits(n_qubits: int, n_d: int, layers: int) -> list[list[int]]:
    """Active qubits of each q_nd layer: layer j drops qubits 0..min(j, n - n_d) - 1."""
    return [list(range(min(j, n_qubits - n_d), n_qubits)) for j in range(layers)]


def q_nd(n_qubits: int = 6, n_d: int = 2, layers: int = 5) -> QuantumCircuit:
    """Universal layers that shrink: after each of the first ``n - n_d`` layers, measure one qubit.

    Qubit 0 is measured (into ``meas[0]``) after layer 0, qubit 1 after layer 1, ...; a measured
    qubit is never acted on again, and the last ``n_d`` qubits are read out. Layer j is a universal
    layer on its active qubits (a single RZZ when 2 are active). n=6, L=5, n_d=2 gives
    18 + 15 + 12 + 9 + 5 = 59 weights.

    Example:
        >>> q_nd(6, 2, 5).num_parameters
        59
    """
    if not 2 <= n_d < n_qubits:
        raise ValueError(f"q_nd: n_d must be in 2..{n_qubits - 1} for {n_qubits} qubits, got {n_d}")
    if layers < n_qubits - n_d:
        raise ValueError(f"q_nd: measuring {n_qubits - n_d} qubits needs >= {n_qubits - n_d} layers")
    active = q_nd_active_qubits(n_qubits, n_d, layers)
    w = ParameterVector("w", sum(universal_layer_size(len(a)) for a in active))
    qc = QuantumCircuit(n_qubits, name=f"q{n_d}")
    meas = ClassicalRegister(n_qubits, MEAS_REGISTER)
    qc.add_register(meas)
    offset = 0
    for j, qubits in enumerate(active):
        size = universal_layer_size(len(qubits))
        qc.compose(_universal_layer(len(qubits), w[offset : offset + size]), qubits, inplace=True)
        offset += size
        if j < n_qubits - n_d:
            qc.measure(j, meas[j])
    return qc
