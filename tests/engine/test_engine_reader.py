"""Reading circuits into atoms: affine angle extraction and clear errors for what the engine
cannot simulate exactly."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector

from qkd_qiskit.engine import compile_circuit
from qkd_qiskit.engine.atoms import Diag, Measure, Mono, Mux, Rot, atom_qubits
from qkd_qiskit.engine.reader import ParamIndex, read_atoms


def test_affine_angles_match_qiskit_evaluation():
    """``coef . params + offset`` equals Qiskit's own evaluation of the expression."""
    xs, ws = ParameterVector("x", 2), ParameterVector("w", 2)
    pidx = ParamIndex(list(xs), list(ws))
    rng = np.random.default_rng(0)
    for expr in (xs[0], 2 * xs[1] + 0.3, xs[0] - ws[1], -ws[0] / 4 + 1.5 * xs[1] - 0.2, 0.7 + 0 * ws[0]):
        aff = pidx.affine(expr)
        values = rng.uniform(-3, 3, 4)
        joint = list(xs) + list(ws)
        bound = expr.bind({p: values[joint.index(p)] for p in expr.parameters})
        assert abs(sum(c * values[j] for j, c in aff.coef) + aff.offset - float(bound)) < 1e-12
    assert pidx.affine(1.25).coef == () and pidx.affine(1.25).offset == 1.25


def test_gates_become_the_expected_atoms():
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(3, 1)
    qc.ry(x, 0)
    qc.cx(0, 1)
    qc.rzz(w, 1, 2)
    qc.barrier()
    qc.ccx(0, 1, 2)
    qc.measure(2, 0)
    atoms = read_atoms(qc, ParamIndex([x], [w]))
    assert [type(a) for a in atoms] == [Rot, Mono, Diag, Mono, Measure]
    assert atoms[2].qubits == (1, 2) and atoms[2].angle.coef == ((1, 1.0),)
    assert (atoms[4].q, atoms[4].clbit) == (2, 0)


def test_unknown_gates_are_read_through_their_definition():
    w = Parameter("w")
    inner = QuantumCircuit(2, name="inner")
    inner.cry(w, 0, 1)
    qc = QuantumCircuit(3)
    qc.append(inner.to_gate(), [2, 0])
    atoms = read_atoms(qc, ParamIndex([], [w]))
    assert atoms and all(not isinstance(a, Mux) for a in atoms)
    assert {q for a in atoms for q in atom_qubits(a)} == {0, 2}


def test_errors_are_clear():
    theta = Parameter("t")
    qc = QuantumCircuit(2, 2)
    qc.ry(theta, 0)
    qc.measure(0, 0)
    qc.cx(0, 1)
    with pytest.raises(ValueError, match="after being measured"):
        compile_circuit(qc, [], [theta], cache=False)
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    with pytest.raises(ValueError, match="neither"):
        compile_circuit(qc, [], [], cache=False)
    with pytest.raises(ValueError, match="distinct"):
        compile_circuit(qc, [theta], [theta], cache=False)
    with pytest.raises(ValueError, match="readout must be"):
        compile_circuit(qc, [], [theta], readout="x", cache=False)
    with pytest.raises(ValueError, match="mode must be"):
        compile_circuit(qc, [], [theta], mode="sparse", cache=False)
    with pytest.raises(ValueError, match="out of range"):
        compile_circuit(qc, [], [theta], readout_qubits=[1], cache=False)
    qc = QuantumCircuit(1)
    qc.ry(theta * theta, 0)
    with pytest.raises(ValueError, match="not affine"):
        compile_circuit(qc, [], [theta], cache=False)


def test_control_flow_and_non_unitary_instructions_are_refused():
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    with pytest.raises(ValueError, match="control flow"):
        compile_circuit(qc, cache=False)
    qc = QuantumCircuit(1)
    qc.h(0)
    qc.reset(0)
    with pytest.raises(ValueError, match="unsupported instruction 'reset'"):
        compile_circuit(qc, cache=False)
