"""The engine behind Qiskit V2 primitives and qiskit-machine-learning gradients: same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN

from qkd_qiskit.circuits import build_student
from qkd_qiskit.engine import compile_student
from qkd_qiskit.primitives import (
    EngineEstimator,
    EngineEstimatorGradient,
    EngineSampler,
    EngineSamplerGradient,
    ExactDataBin,
)

TOL = 1e-6


def _engine_jacobian(student, angles: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Engine readout (N, K) and per-sample Jacobian (N, K, n_w), float64."""
    prog = compile_student(student)
    outs, jacs = [], []
    for a in angles:
        w = torch.tensor(weights, requires_grad=True)
        out = prog(torch.tensor(a)[None], w)[0]
        outs.append(out.detach().numpy())
        jacs.append([torch.autograd.grad(out[k], w, retain_graph=True)[0].numpy() for k in range(len(out))])
    return np.array(outs), np.array(jacs)


@pytest.mark.parametrize("name", ["hea", "universal_h"])
def test_estimator_qnn_matches_engine(name):
    st = build_student(name)
    rng = np.random.default_rng(1)
    angles = np.asarray(st.input_angles(rng.normal(size=(4, 64))))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    est = EngineEstimator()
    qnn = EstimatorQNN(circuit=st.circuit, input_params=st.input_params, weight_params=st.weight_params,
                       observables=st.observables(), estimator=est, gradient=EngineEstimatorGradient(est),
                       input_gradients=True)
    fwd = qnn.forward(angles, weights)
    g_in, g_w = qnn.backward(angles, weights)
    out, jac = _engine_jacobian(st, angles, weights)
    assert np.abs(fwd - out).max() < TOL
    assert np.abs(g_w - jac).max() < TOL
    # input gradients against the engine's autograd w.r.t. angles
    a = torch.tensor(angles, requires_grad=True)
    o = compile_student(st)(a, torch.tensor(weights))
    ref = np.stack([torch.autograd.grad(o[:, k].sum(), a, retain_graph=True)[0].numpy() for k in range(6)], 1)
    assert np.abs(g_in - ref).max() < TOL


def test_sampler_qnn_matches_engine_probs():
    st = build_student("q2")
    rng = np.random.default_rng(2)
    angles = np.asarray(st.input_angles(rng.normal(size=(3, 64))))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    sampler = EngineSampler()

    def readout(i: int) -> int:
        return sum(((i >> q) & 1) << j for j, q in enumerate(st.readout_qubits))

    qnn = SamplerQNN(circuit=st.measured_circuit(), input_params=st.input_params,
                     weight_params=st.weight_params, sampler=sampler,
                     gradient=EngineSamplerGradient(sampler), interpret=readout, output_shape=4)
    fwd = qnn.forward(angles, weights)
    _, g_w = qnn.backward(angles, weights)
    out, jac = _engine_jacobian(st, angles, weights)
    assert np.abs(fwd - out).max() < TOL
    assert np.abs(g_w - jac).max() < TOL


def test_torch_connector_step_matches_engine():
    """One training step through TorchConnector gives the engine's loss and weight gradient."""
    st = build_student("hea")
    rng = np.random.default_rng(3)
    angles = torch.tensor(np.asarray(st.input_angles(rng.normal(size=(5, 64)))))
    y = torch.tensor([0, 1, 2, 1, 0])
    est = EngineEstimator()
    qnn = EstimatorQNN(circuit=st.circuit, input_params=st.input_params, weight_params=st.weight_params,
                       observables=st.observables(), estimator=est, gradient=EngineEstimatorGradient(est))
    w0 = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    conn = TorchConnector(qnn, initial_weights=w0)
    head = torch.nn.Linear(6, 3).double()
    loss = torch.nn.functional.cross_entropy(head(conn(angles).double()), y)
    loss.backward()
    w = torch.tensor(w0, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(head(compile_student(st)(angles, w)), y)
    g = torch.autograd.grad(ref, w)[0]
    assert abs(loss.item() - ref.item()) < 1e-5  # TorchConnector casts outputs to float32
    assert (conn.weight.grad.double() - g).abs().max() < 1e-5


def _small_circuit() -> tuple[QuantumCircuit, ParameterVector]:
    p = ParameterVector("p", 4)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.ry(p[0], 1)
    qc.cx(0, 2)
    qc.rx(2 * p[1] - 0.4, 2)
    qc.rzz(p[2], 0, 1)
    qc.cry(p[3], 1, 2)
    qc.u(p[0], p[1], 0.3, 0)
    return qc, p


def test_estimator_matches_statevector_estimator_on_general_pubs():
    qc, _ = _small_circuit()
    rng = np.random.default_rng(4)
    values = rng.uniform(-2, 2, (4, 4))
    obs = [[SparsePauliOp.from_list([("XYZ", 0.5), ("IIZ", -1.0)])], [SparsePauliOp("YXI")],
           [SparsePauliOp.from_list([("ZZI", 0.3), ("XIX", 0.2)])]]
    ours = EngineEstimator().run([(qc, obs, values)]).result()[0].data.evs
    ref = StatevectorEstimator().run([(qc, obs, values)]).result()[0].data.evs
    assert ours.shape == ref.shape == (3, 4)
    assert np.abs(ours - ref).max() < 1e-10


def test_estimator_gradient_matches_param_shift():
    qc, p = _small_circuit()
    rng = np.random.default_rng(5)
    values = rng.uniform(-2, 2, (3, 4))
    obs = SparsePauliOp.from_list([("XYZ", 0.5), ("ZIZ", -1.0)])
    ours = EngineEstimatorGradient().run([qc] * 3, [obs] * 3, values).result().gradients
    ref = ParamShiftEstimatorGradient(StatevectorEstimator()).run([qc] * 3, [obs] * 3, values).result().gradients
    assert np.abs(np.array(ours) - np.array(ref)).max() < 1e-9


def test_estimator_gradient_mixed_rows_match_param_shift():
    """Repeated rows, a different observable per row and per-row parameter subsets (the rows are
    deduplicated and the observables batched internally; each row must still get its own answer)."""
    qc, p = _small_circuit()
    rng = np.random.default_rng(6)
    base = rng.uniform(-2, 2, (2, 4))
    values = base[[0, 1, 0, 1, 0]]
    obs = [SparsePauliOp("XYZ"), SparsePauliOp("XYZ"), SparsePauliOp.from_list([("ZIZ", -1.0), ("IXI", 0.4)]),
           SparsePauliOp("IIZ"), SparsePauliOp("YYI")]
    params = [[p[0], p[2]], list(p), [p[3]], [p[1], p[0]], list(p)]
    ours = EngineEstimatorGradient().run([qc] * 5, obs, values, parameters=params).result().gradients
    ref = ParamShiftEstimatorGradient(StatevectorEstimator()).run([qc] * 5, obs, values,
                                                                    parameters=params).result().gradients
    for a, b, ps in zip(ours, ref, params):
        assert a.shape == (len(ps),)
        assert np.abs(a - b).max() < 1e-9


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


def test_sampler_exact_distribution_with_mid_circuit_measurement():
    qc, p = _measured_circuit()
    values = np.array([[0.3, -1.1, 0.7], [2.0, 0.4, -0.2]])
    res = EngineSampler().run([(qc, values)]).result()[0]
    assert isinstance(res.data, ExactDataBin)
    unitary = qc.copy_empty_like()
    for inst in qc.data:
        if inst.operation.name != "measure":
            unitary.append(inst)
    for i, v in enumerate(values):
        probs = Statevector(unitary.assign_parameters(v)).probabilities_dict()
        expected: dict[str, float] = {}
        for key, pr in probs.items():  # key: q2 q1 q0 -> clbits: b1 = q1, b0 = q2, a0 = q0
            bits = f"{key[1]}{key[0]}{key[2]}"  # joint key: clbit2 clbit1 clbit0 = b1 b0 a0
            expected[bits] = expected.get(bits, 0.0) + pr
        got = res.data.get_counts(i)
        assert set(k for k, v in expected.items() if v > 1e-12) == set(got)
        assert all(abs(got[k] - expected[k]) < 1e-10 for k in got)
        b_marg = res.data.b.get_counts(i)
        assert abs(sum(b_marg.values()) - 1) < 1e-12
    shots = EngineSampler(default_shots=4000, seed=0).run([(qc, values)]).result()[0]
    assert shots.data.b.num_shots == 4000 and shots.data.a.num_bits == 1
    emp = shots.data.a.get_counts(0).get("1", 0) / 4000
    assert abs(emp - res.data.a.get_counts(0).get("1", 0)) < 0.05


def test_sampler_gradient_matches_finite_differences():
    qc, p = _measured_circuit()
    values = np.array([[0.3, -1.1, 0.7], [2.0, 0.4, -0.2]])
    grads = EngineSamplerGradient().run([qc, qc], values).result().gradients
    sampler, eps = EngineSampler(), 1e-6
    for i, v in enumerate(values):
        for j in range(3):
            up, down = v.copy(), v.copy()
            up[j] += eps
            down[j] -= eps
            fd = (sampler.distribution(qc, up[None])[0] - sampler.distribution(qc, down[None])[0]) / (2 * eps)
            ours = np.zeros_like(fd)
            for k, val in grads[i][j].items():
                ours[k] = val
            assert np.abs(ours - fd).max() < 1e-7
