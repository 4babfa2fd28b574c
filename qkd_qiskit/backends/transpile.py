"""Transpiled circuits: one preset-pass-manager run per student circuit, its layouts and statistics,
and the compaction of an ISA circuit onto the physical qubits it actually uses.

Example:
    >>> from qiskit import QuantumCircuit
    >>> qc = QuantumCircuit(5, 1)
    >>> _ = qc.h(3); _ = qc.cx(3, 1); _ = qc.measure(1, 0)
    >>> active_qubits(qc)
    [1, 3]
    >>> small, clbit_qubit = compact(qc, [1, 3])
    >>> small.num_qubits, clbit_qubit
    (2, {0: 0})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from qiskit import QuantumCircuit

SKIP = frozenset({"barrier", "delay"})
"""Instructions that neither make a qubit active nor survive compaction."""


@dataclass(frozen=True)
class Transpiled:
    """A student circuit transpiled once to a device ISA, with what reports need about it."""

    circuit: QuantumCircuit
    layout: tuple[int, ...]
    """Physical qubit of each virtual qubit at the start (``initial_index_layout``)."""
    final_layout: tuple[int, ...]
    """Physical qubit holding each virtual qubit at the end (after routing)."""
    choice: dict = field(default_factory=dict)
    """How it was chosen (:func:`best_transpile`): level, seed, estimated success, trials."""

    @property
    def depth(self) -> int:
        return self.circuit.depth()

    @property
    def two_qubit_gates(self) -> int:
        return self.circuit.num_nonlocal_gates()

    def stats(self) -> dict[str, Any]:
        """Depth, two-qubit gate count and layouts, for manifests and dry runs."""
        return {"depth": self.depth, "two_qubit_gates": self.two_qubit_gates,
                "layout": list(self.layout), "final_layout": list(self.final_layout),
                "ops": {k: int(v) for k, v in self.circuit.count_ops().items()}, **self.choice}


def estimated_success(circuit: QuantumCircuit, target: Any) -> float:
    """Estimated success probability of an ISA circuit: the product of ``1 - error`` of every gate
    and measurement on the physical qubits it uses, from the target's own calibration (public
    ``Target`` API; instructions without a reported error count as perfect)."""
    p = 1.0
    for inst in circuit.data:
        name = inst.operation.name
        if name in SKIP or name not in target.operation_names:
            continue
        props = target[name].get(tuple(circuit.find_bit(q).index for q in inst.qubits))
        if props is not None and props.error is not None:
            p *= 1.0 - props.error
    return p


def best_transpile(circuit: QuantumCircuit, trials: Sequence[tuple[dict, Any]], target: Any,
                   keep_parameters: bool = False) -> Transpiled:
    """Run every ``(info, pass_manager)`` trial and keep the ISA circuit with the highest
    :func:`estimated_success` on ``target`` (the first trial when there is no target); the winner's
    ``info`` (level, seed), its estimate and the number of trials are recorded in ``stats()``.

    ``keep_parameters``: prefer trials whose circuit still holds every parameter (levels 2-3 remove
    diagonal gates right before a measurement, e.g. hea's last RZ layer, which changes no read-out
    but leaves a QNN without some of its weights)."""
    candidates = []
    for i, (info, pm) in enumerate(trials):
        t = transpile_once(circuit, pm)
        esp = None if target is None or pm is None else estimated_success(t.circuit, target)
        kept = not keep_parameters or set(circuit.parameters) <= set(t.circuit.parameters)
        candidates.append(((kept, -1.0 if esp is None else esp, -i), info, t, esp))
    _, info, t, esp = max(candidates, key=lambda c: c[0])  # kept, then best estimate, then first
    return Transpiled(t.circuit, t.layout, t.final_layout, {**info, "estimated_success": esp, "trials": len(trials)})


def transpile_once(circuit: QuantumCircuit, pass_manager: Any) -> Transpiled:
    """Run the preset pass manager and record the layouts (a circuit without device is kept as is)."""
    if pass_manager is None:
        n = circuit.num_qubits
        return Transpiled(circuit, tuple(range(n)), tuple(range(n)))
    isa = pass_manager.run(circuit)
    if isa.layout is None:
        n = circuit.num_qubits
        return Transpiled(isa, tuple(range(n)), tuple(range(n)))
    return Transpiled(isa, tuple(isa.layout.initial_index_layout(filter_ancillas=True)),
                      tuple(isa.layout.final_index_layout(filter_ancillas=True)))


def active_qubits(circuit: QuantumCircuit) -> list[int]:
    """Physical qubits that any instruction (other than barrier/delay) touches, sorted."""
    return sorted({circuit.find_bit(q).index for inst in circuit.data
                   if inst.operation.name not in SKIP for q in inst.qubits})


def compact(circuit: QuantumCircuit, qubits: Sequence[int], drop_measures: bool = False
            ) -> tuple[QuantumCircuit, dict[int, int]]:
    """``circuit`` restricted to ``qubits`` (renumbered 0..k-1), clbits kept; returns the clbit map.

    The map sends each clbit index to the compact qubit last measured into it, which is where a
    read-out qubit ends up after routing. Measurements are dropped with ``drop_measures``.
    """
    pos = {p: i for i, p in enumerate(qubits)}
    out = QuantumCircuit(len(qubits), name=circuit.name)
    for creg in circuit.cregs:
        out.add_register(creg)
    measured: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name in SKIP:
            continue
        qs = [pos[circuit.find_bit(q).index] for q in inst.qubits]
        if inst.operation.name == "measure":
            measured[circuit.find_bit(inst.clbits[0]).index] = qs[0]
            if drop_measures:
                continue
        out.append(inst.operation, qs, inst.clbits)
    return out, measured


def readout_physical(circuit: QuantumCircuit, register: str, bits: Sequence[int]) -> list[int]:
    """The qubit whose measurement last wrote each clbit ``register[b]`` of ``circuit`` (on an ISA
    circuit: the physical read-out qubit of each read-out bit).

    Example:
        >>> from qiskit import ClassicalRegister
        >>> qc = QuantumCircuit(3)
        >>> meas = ClassicalRegister(2, "meas")
        >>> qc.add_register(meas)
        >>> _ = qc.measure(2, meas[0]), qc.measure(0, meas[1])
        >>> readout_physical(qc, "meas", [0, 1])
        [2, 0]
    """
    reg = next(r for r in circuit.cregs if r.name == register)
    writer: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            for q, c in zip(inst.qubits, inst.clbits):
                writer[circuit.find_bit(c).index] = circuit.find_bit(q).index
    return [writer[circuit.find_bit(reg[b]).index] for b in bits]

