"""Circuit reading: a :class:`~qiskit.circuit.QuantumCircuit`'s instructions -> affine-parameterised atoms.

Rotations, phases, ``u``, the diagonal 2-qubit gates and ``mux_ry`` are read natively; any other
constant gate becomes a 1-qubit matrix or a monomial (permutation times phases) when it is one;
everything else is expanded through its ``definition``. Gate angles must be affine in the input and
weight parameters; classical control flow, ``reset`` and ``initialize`` are refused.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> x, w = Parameter("x"), Parameter("w")
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.ry(2 * x + 0.5, 0), qc.cx(0, 1), qc.rzz(w, 0, 1)
    >>> [type(a).__name__ for a in read_atoms(qc, ParamIndex([x], [w]))]
    ['Rot', 'Mono', 'Diag']
    >>> ParamIndex([x], [w]).affine(2 * x + 0.5)
    Affine(coef=((0, 2.0),), offset=0.5)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from qiskit.circuit import ControlFlowOp, Parameter, ParameterExpression, QuantumCircuit

from .atoms import Affine, Const1, Diag, Measure, Mono, Mux, Rot, monomial

__all__ = ["ParamIndex", "read_atoms"]

_SKIP = frozenset({"barrier", "delay", "id"})
# Diagonal phase tables ``phase(local index) = angle * table`` of parameterised diagonal gates
# (local index = sum_j bit(qargs[j]) << j; global phases are irrelevant and dropped).
_DIAG_TABLES = {
    "rzz": np.array([-0.5, 0.5, 0.5, -0.5]),
    "cp": np.array([0.0, 0.0, 0.0, 1.0]),
    "cu1": np.array([0.0, 0.0, 0.0, 1.0]),
    "crz": np.array([0.0, -0.5, 0.0, 0.5]),
}


class ParamIndex:
    """Maps circuit parameters to joint indices and turns expressions into :class:`Affine`."""

    def __init__(self, input_params: Sequence[Parameter], weight_params: Sequence[Parameter]):
        self.order = list(input_params) + list(weight_params)
        self.index = {p: i for i, p in enumerate(self.order)}
        if len(self.index) != len(self.order):
            raise ValueError("compile_circuit: input_params and weight_params must be distinct")
        self.n_inputs = len(input_params)

    def require_all(self, circuit: QuantumCircuit) -> None:
        """Raise unless every parameter of ``circuit`` is an input or a weight parameter."""
        missing = set(circuit.parameters) - set(self.index)
        if missing:
            raise ValueError(f"compile_circuit: circuit parameters {sorted(p.name for p in missing)} "
                             "are neither input nor weight parameters")

    def affine(self, expr: Any) -> Affine:
        """Affine form of a gate parameter; raises for unknown or non-affine parameters."""
        if isinstance(expr, Parameter):
            return Affine(((self._lookup(expr), 1.0),), 0.0)
        if isinstance(expr, ParameterExpression):
            params = expr.parameters
            if not params:
                return Affine((), _real(expr))
            coef = []
            for p in params:
                grad = expr.gradient(p)
                if isinstance(grad, ParameterExpression) and grad.parameters:
                    raise ValueError(f"compile_circuit: gate angle {expr} is not affine in {p}")
                coef.append((self._lookup(p), _real(grad)))
            return Affine(tuple(sorted(coef)), _real(expr.bind({p: 0.0 for p in params})))
        return Affine((), _real(expr))

    def _lookup(self, p: Parameter) -> int:
        if p not in self.index:
            raise ValueError(
                f"compile_circuit: parameter {p.name!r} is neither an input nor a weight parameter")
        return self.index[p]


def _real(value: Any) -> float:
    z = complex(value)
    if abs(z.imag) > 1e-12:
        raise ValueError(f"compile_circuit: complex gate parameter {value}")
    return z.real


def read_atoms(circuit: QuantumCircuit, pidx: ParamIndex) -> list[Any]:
    """Flatten ``circuit`` into atoms (recursing into definitions of gates not handled natively)."""
    atoms: list[Any] = []
    qmap = {q: i for i, q in enumerate(circuit.qubits)}
    cmap = {c: i for i, c in enumerate(circuit.clbits)}
    _read_into(circuit, [qmap[q] for q in circuit.qubits], [cmap[c] for c in circuit.clbits], pidx, atoms)
    return atoms


def _read_into(circuit: QuantumCircuit, qubits: list[int], clbits: list[int], pidx: ParamIndex,
               atoms: list[Any]) -> None:
    local_q = {q: qubits[i] for i, q in enumerate(circuit.qubits)}
    local_c = {c: clbits[i] for i, c in enumerate(circuit.clbits)}
    for inst in circuit.data:
        qs = tuple(local_q[q] for q in inst.qubits)
        cs = tuple(local_c[c] for c in inst.clbits)
        atoms.extend(_atoms_of(inst.operation, qs, cs, pidx))


def _atoms_of(op: Any, qs: tuple[int, ...], cs: tuple[int, ...], pidx: ParamIndex) -> list[Any]:
    """Atoms of one instruction; unknown gates are expanded through their ``definition``."""
    name = op.name
    if name in _SKIP:
        return []
    if name == "measure":
        return [Measure(qs[0], cs[0])]
    if getattr(op, "condition", None) is not None or isinstance(op, ControlFlowOp):
        raise ValueError(f"compile_circuit: classical control flow ({name}) is not supported")
    params = list(getattr(op, "params", []))
    native = _native_atoms(name, params, qs, pidx)
    if native is not None:
        return native
    free = any(isinstance(p, ParameterExpression) and p.parameters for p in params)
    if not free and op.num_qubits >= 1 and op.num_clbits == 0 and name not in ("reset", "initialize"):
        const = _const_atoms(op, qs)
        if const is not None:
            return const
    definition = getattr(op, "definition", None)
    if definition is None or name in ("reset", "initialize"):
        raise ValueError(f"compile_circuit: unsupported instruction {name!r} (no unitary definition)")
    out: list[Any] = []
    _read_into(definition, list(qs), list(cs), pidx, out)
    return out


def _native_atoms(name: str, params: list[Any], qs: tuple[int, ...], pidx: ParamIndex) -> list[Any] | None:
    """Atoms for gates read directly (rotations, phases, diagonal 2-qubit gates, mux_ry)."""
    if name in ("rx", "ry", "rz"):
        return [Rot(qs[0], name[1].upper(), pidx.affine(params[0]))]
    if name in ("p", "u1"):
        return [Rot(qs[0], "Z", pidx.affine(params[0]))]
    if name in ("u", "u3", "u2"):
        theta, phi, lam = (math.pi / 2, *params) if name == "u2" else params
        return [Rot(qs[0], "Z", pidx.affine(lam)), Rot(qs[0], "Y", pidx.affine(theta)),
                Rot(qs[0], "Z", pidx.affine(phi))]
    if name in _DIAG_TABLES:
        return [Diag(qs, pidx.affine(params[0]), _DIAG_TABLES[name])]
    if name == "mux_ry":
        return [Mux(qs[-1], qs[:-1], [pidx.affine(p) for p in params])]
    return None


def _const_atoms(op: Any, qs: tuple[int, ...]) -> list[Any] | None:
    """Constant gates: any 1-qubit matrix, or a monomial (permutation x phases) multi-qubit gate."""
    try:
        mat = np.asarray(op.to_matrix(), dtype=complex)
    except Exception:  # noqa: BLE001 - gates without a matrix fall back to their definition
        return None
    if len(qs) == 1:
        return [Const1(qs[0], mat)]
    mono = monomial(mat)
    return None if mono is None else [Mono(qs, *mono)]
