"""Each instruction of a compact ISA circuit as a noisy channel: gate followed by its Aer error.

Aer applies a ``QuantumError`` right after the gate it is attached to: the local error of that
gate name on exactly those (ordered) qubits if the model has one, else the model's all-qubit error
for the name, else none. :class:`ErrorTable` reads that table from the noise model's public
``to_dict()`` records (:func:`qkd_qiskit.backends.noise_errors`) and turns each error into a PTM
with ``QuantumError.from_dict(record).to_quantumchannel()``. A channel is stored as
``R(theta) = B + cos(theta) C + sin(theta) S`` (``C = S = 0`` for a fixed gate) with ``theta`` an
affine function of the circuit's weights (:class:`Channel`).

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit_aer.noise import NoiseModel, depolarizing_error
    >>> nm = NoiseModel(); nm.add_quantum_error(depolarizing_error(0.1, 1), "sx", [0])
    >>> qc = QuantumCircuit(1); _ = qc.sx(0)
    >>> ch = circuit_channels(qc, [], ErrorTable(nm))[0]
    >>> ch.qubits, np.round(ch.b.diagonal(), 4).tolist()  # sx rotates Y, Z about X; depolarising keeps 1 - p
    ((0,), [1.0, 0.9, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit_aer.noise import QuantumError

from ..backends import noise_errors
from .ptm import gate_ptm, real_ptm, rotation_form


@dataclass(frozen=True)
class Channel:
    """One noisy instruction: ``PTM = B + cos(theta) C + sin(theta) S`` on ``qubits`` (local qubit
    ``i`` = ``qubits[i]``, least significant first), ``theta = coef . weights + offset`` when
    ``coef`` is not None."""

    qubits: tuple[int, ...]
    b: np.ndarray
    c: np.ndarray
    s: np.ndarray
    coef: np.ndarray | None = None
    offset: float = 0.0


class ErrorTable:
    """Which ``QuantumError`` (as a PTM) Aer applies after each gate of a noise model."""

    def __init__(self, noise_model: Any):
        self.local: dict[tuple[str, tuple[int, ...]], dict] = {}
        self.default: dict[str, dict] = {}
        for record in noise_errors(noise_model):
            if record["type"] != "qerror":
                continue
            for op in record["operations"]:
                if record.get("gate_qubits") is None:
                    self.default[op] = record
                for qubits in record.get("gate_qubits") or ():
                    self.local[(op, tuple(qubits))] = record
        self._ptms: dict[int, np.ndarray] = {}

    def ptm(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        """PTM of the error after gate ``name`` on ``qubits`` (None: noiseless)."""
        record = self.local.get((name, qubits), self.default.get(name))
        if record is None:
            return None
        if id(record) not in self._ptms:
            self._ptms[id(record)] = real_ptm(QuantumError.from_dict(record).to_quantumchannel())
        return self._ptms[id(record)]


def affine_angle(expr: Any, weight_index: dict) -> tuple[np.ndarray, float]:
    """``(coef, offset)`` with ``expr = coef . weights + offset`` (a non-affine angle is a ValueError)."""
    coef = np.zeros(len(weight_index))
    params = getattr(expr, "parameters", set())
    for p in params:
        if p not in weight_index:
            raise ValueError(f"affine_angle: parameter {p.name} is not a weight of this circuit part")
        g = expr.gradient(p)
        if getattr(g, "parameters", None):
            raise ValueError(f"affine_angle: angle {expr} is not affine in the weights")
        coef[weight_index[p]] += float(g)
    offset = float(expr.bind({p: 0.0 for p in params}) if params else expr)
    return coef, offset


def instruction_channel(inst: Any, qubits: tuple[int, ...], errors: ErrorTable, weight_index: dict) -> Channel:
    """The :class:`Channel` of one instruction (gate, then its error)."""
    op = inst.operation
    trainable = any(getattr(p, "parameters", None) for p in op.params)
    if trainable:
        b, c, s = rotation_form(op)
        coef, offset = affine_angle(op.params[0], weight_index)
    else:
        b, c, s = gate_ptm(op), None, None
        coef, offset = None, 0.0
    err = errors.ptm(op.name, qubits)
    if err is not None:
        b = err @ b
        c, s = (None, None) if c is None else (err @ c, err @ s)
    zero = np.zeros_like(b)
    return Channel(qubits, b, zero if c is None else c, zero if s is None else s, coef, offset)


def circuit_channels(circuit: QuantumCircuit, weight_params: Sequence[Any], errors: ErrorTable) -> list[Channel]:
    """Every instruction of a measurement-free circuit as a :class:`Channel`, in order."""
    weight_index = {p: i for i, p in enumerate(weight_params)}
    out = []
    for inst in circuit.data:
        if inst.operation.name in ("barrier", "measure"):
            raise ValueError(f"circuit_channels: {inst.operation.name} left in the circuit (compact it first)")
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if len(qubits) > 2:
            raise ValueError(f"circuit_channels: {inst.operation.name} acts on {len(qubits)} qubits (ISA gates have <= 2)")
        out.append(instruction_channel(inst, qubits, errors, weight_index))
    return out
