"""EngineSampler (exact and shot-based) and EngineSamplerGradient on a circuit with a mid-circuit
measurement and two registers, against Qiskit's Statevector and StatevectorSampler."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import DataBin, StatevectorSampler
from qiskit.quantum_info import Statevector
from qiskit_machine_learning.gradients import BaseSamplerGradient

from qkd_qiskit.primitives import (
    EngineSampler,
    EngineSamplerGradient,
    ExactDataBin,
    ExactProbArray,
)

VALUES = np.array([[0.3, -1.1, 0.7], [2.0, 0.4, -0.2]])


def _measured_circuit() -> tuple[QuantumCircuit, ParameterVector]:
    """Mid-circuit measurement into one register, final ones into another."""
    p = ParameterVector("p", 3)
    qc = QuantumCircuit(3)
    a, b = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    qc.add_register(a)
    qc.add_register(b)
    qc.ry(p[0], 0)
    qc.cx(0, 1)
    qc.measure(0, a[0])
    qc.rx(p[1], 1)
    qc.rzz(p[2], 1, 2)
    qc.h(2)
    qc.measure(1, b[1])
    qc.measure(2, b[0])
    return qc, p


def _oracle(qc: QuantumCircuit, v: np.ndarray) -> np.ndarray:
    """Exact joint clbit distribution (index bits: clbit2 clbit1 clbit0 = b1 b0 a0 = q1 q2 q0) by
    Statevector on the circuit without its measurements (a measured qubit stays idle)."""
    unitary = qc.copy_empty_like()
    for inst in qc.data:
        if inst.operation.name != "measure":
            unitary.append(inst)
    probs = Statevector(unitary.assign_parameters(v)).probabilities()  # index: q2 q1 q0
    out = np.zeros(8)
    for i, pr in enumerate(probs):
        q0, q1, q2 = i & 1, (i >> 1) & 1, (i >> 2) & 1
        out[q0 | (q2 << 1) | (q1 << 2)] += pr
    return out


def test_sampler_exact_distribution_with_mid_circuit_measurement():
    qc, _ = _measured_circuit()
    res = EngineSampler().run([(qc, VALUES)]).result()[0]
    assert isinstance(res.data, ExactDataBin) and res.metadata["exact"] and res.metadata["shots"] is None
    for i, v in enumerate(VALUES):
        expected = _oracle(qc, v)
        got = res.data.get_counts(i)
        assert set(got) == {format(k, "03b") for k in np.flatnonzero(expected > 1e-12)}
        assert all(abs(got[k] - expected[int(k, 2)]) < 1e-10 for k in got)
        assert np.abs(res.data.get_probabilities(i) - expected).max() < 1e-10
        assert res.data.get_int_counts(i) == {int(k, 2): p for k, p in got.items()}
        a_ref = [expected[[0, 2, 4, 6]].sum(), expected[[1, 3, 5, 7]].sum()]  # a = clbit 0
        b_ref = expected.reshape(4, 2).sum(1)  # b = clbits 2 1
        assert np.abs(res.data.a.get_probabilities(i) - a_ref).max() < 1e-10
        assert np.abs(res.data.b.get_probabilities(i) - b_ref).max() < 1e-10
    total = res.data.b.get_probabilities()  # loc None: summed over the pub like counts over shots
    assert np.abs(total - sum(res.data.b.get_probabilities(i) for i in range(2))).max() < 1e-15


def test_exact_data_bin_uses_the_public_data_bin_api():
    """Registers and the joint distribution are fields given to DataBin's constructor."""
    qc, _ = _measured_circuit()
    data = EngineSampler().run([(qc, VALUES)]).result()[0].data
    assert list(data) == ["a", "b", "joint"] and data.shape == (2,)
    assert data["b"] is data.b and isinstance(data.joint, ExactProbArray)
    assert data.joint.num_bits == 3 and data.b.num_bits == 2 and data.b.num_shots is None
    assert data.get_counts(1) == data.joint.get_counts(1)
    reg = ExactProbArray(np.array([[1.0, 0.0]]), 1)
    with pytest.raises(ValueError, match="joint"):
        ExactDataBin(reg, shape=(1,), joint=reg)


def test_sampler_shots_match_statevector_sampler():
    """Integer shots give ordinary BitArray registers, laid out like Qiskit's own sampler."""
    qc, _ = _measured_circuit()
    shots = 4000
    ours = EngineSampler(default_shots=shots, seed=0).run([(qc, VALUES)]).result()[0]
    ref = StatevectorSampler(seed=1).run([(qc, VALUES)], shots=shots).result()[0]
    assert type(ours.data) is DataBin and not ours.metadata["exact"]
    for reg in ("a", "b"):
        assert getattr(ours.data, reg).num_shots == shots and getattr(ours.data, reg).shape == (2,)
        for i in range(2):
            mine, theirs = getattr(ours.data, reg).get_counts(i), getattr(ref.data, reg).get_counts(i)
            keys = set(mine) | set(theirs)
            assert sum(abs(mine.get(k, 0) - theirs.get(k, 0)) for k in keys) / shots < 0.1


def test_sampler_gradient_matches_finite_differences_of_statevector():
    qc, _ = _measured_circuit()
    grads = EngineSamplerGradient().run([qc, qc], VALUES).result().gradients
    eps = 1e-6
    for i, v in enumerate(VALUES):
        assert len(grads[i]) == 3
        for j in range(3):
            up, down = v.copy(), v.copy()
            up[j] += eps
            down[j] -= eps
            fd = (_oracle(qc, up) - _oracle(qc, down)) / (2 * eps)
            ours = np.zeros_like(fd)
            for k, val in grads[i][j].items():
                ours[k] = val
            assert np.abs(ours - fd).max() < 1e-7


def test_sampler_gradient_parameter_subsets_and_written_outcomes():
    """Per-row parameter subsets; keys are the joint outcomes that can occur (an unwritten
    clbit reads 0, so its outcomes are left out)."""
    p = ParameterVector("p", 2)
    qc = QuantumCircuit(2, 3)
    qc.ry(p[0], 0)
    qc.rx(p[1], 1)
    qc.measure(0, 2)
    qc.measure(1, 0)
    values = np.array([[0.4, 1.3], [-0.7, 0.2]])
    full = EngineSamplerGradient().run([qc, qc], values).result().gradients
    part = EngineSamplerGradient().run([qc, qc], values, parameters=[[p[1]], [p[1], p[0]]]).result().gradients
    assert set(full[0][0]) == {0, 1, 4, 5}
    assert part[0] == [full[0][1]] and part[1] == [full[1][1], full[1][0]]
    for v, g in zip(values, full):  # clbit 2 = q0 ~ ry(p0), clbit 0 = q1 ~ rx(p1): independent
        dp0 = np.sin(v[0]) / 2  # d P(q0 = 1) / d p0
        p1 = np.sin(v[1] / 2) ** 2
        assert abs(g[0][4] - dp0 * (1 - p1)) < 1e-12 and abs(g[0][5] - dp0 * p1) < 1e-12


def test_sampler_gradient_reuses_the_samplers_programs():
    qc, _ = _measured_circuit()
    sampler = EngineSampler()
    grad = EngineSamplerGradient(sampler)
    assert grad.engine is sampler.engine and not hasattr(BaseSamplerGradient, "engine")
    grad.run([qc, qc], VALUES).result()
    program = sampler.engine.entry(qc, VALUES).program
    sampler.run([(qc, VALUES)]).result()
    assert sampler.engine.entry(qc, VALUES).program is program
    with pytest.raises(TypeError):
        EngineSamplerGradient(StatevectorSampler())
    with pytest.raises(ValueError, match="differ in length"):
        grad.run([qc], VALUES)
