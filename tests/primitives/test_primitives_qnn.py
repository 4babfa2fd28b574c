"""Students through stock qiskit-machine-learning (EstimatorQNN / SamplerQNN / TorchConnector)
on the engine primitives: values and gradients against Statevector, param shift and finite
differences, and the same numbers as the engine's own training path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Statevector
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
)
from qkd_qiskit.readout import outcome_index

TOL = 1e-6


def _rows(student, angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Parameter values (N, P) in ``circuit.parameters`` order (what primitives and gradients take)."""
    names = list(student.input_params) + list(student.weight_params)
    col = {p: i for i, p in enumerate(names)}
    full = np.concatenate([angles, np.tile(weights, (len(angles), 1))], 1)
    return full[:, [col[p] for p in student.circuit.parameters]]


def _unitary(circuit):
    """The circuit without its measurements (a student never reuses a measured qubit)."""
    out = circuit.copy_empty_like()
    for inst in circuit.data:
        if inst.operation.name != "measure":
            out.append(inst)
    return out


def _engine_jacobian(student, angles: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The engine's training path: readout (N, K) and per-sample Jacobian (N, K, n_w), float64."""
    prog = compile_student(student)
    outs, jacs = [], []
    for a in angles:
        w = torch.tensor(weights, requires_grad=True)
        out = prog(torch.tensor(a)[None], w)[0]
        outs.append(out.detach().numpy())
        jacs.append([torch.autograd.grad(out[k], w, retain_graph=True)[0].numpy() for k in range(len(out))])
    return np.array(outs), np.array(jacs)


@pytest.mark.parametrize("name", ["hea", "universal_h"])
def test_estimator_qnn_matches_statevector_and_param_shift(name):
    st = build_student(name)
    rng = np.random.default_rng(1)
    angles = np.asarray(st.input_angles(rng.normal(size=(2, 64))))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    est = EngineEstimator()
    qnn = EstimatorQNN(circuit=st.circuit, input_params=st.input_params, weight_params=st.weight_params,
                       observables=st.observables(), estimator=est, gradient=EngineEstimatorGradient(est),
                       input_gradients=True)
    fwd = qnn.forward(angles, weights)
    g_in, g_w = qnn.backward(angles, weights)
    rows, obs = _rows(st, angles, weights), st.observables()
    ref = [[Statevector(st.circuit.assign_parameters(r)).expectation_value(o).real for o in obs] for r in rows]
    assert np.abs(fwd - np.array(ref)).max() < 1e-10
    # a sample of inputs and weights, for a random combination of the observables (param shift on
    # every parameter and observable would take minutes; the gradient is linear in the observable)
    ins, ws = [0, 7, 62], [0, 33, len(st.weight_params) - 1]
    sub = [st.input_params[i] for i in ins] + [st.weight_params[i] for i in ws]
    coeffs = rng.normal(size=len(obs))
    combo = sum((c * o for c, o in zip(coeffs[1:], obs[1:])), coeffs[0] * obs[0]).simplify()
    ps = ParamShiftEstimatorGradient(StatevectorEstimator()).run(
        [st.circuit] * len(rows), [combo] * len(rows), rows, parameters=[sub] * len(rows)).result().gradients
    ps = np.array(ps)  # (N, sub)
    assert np.abs(np.einsum("k,nki->ni", coeffs, g_in[:, :, ins]) - ps[:, :len(ins)]).max() < 1e-9
    assert np.abs(np.einsum("k,nki->ni", coeffs, g_w[:, :, ws]) - ps[:, len(ins):]).max() < 1e-9
    # the engine's own training path gives the same numbers for every weight
    out, jac = _engine_jacobian(st, angles, weights)
    assert np.abs(fwd - out).max() < TOL and np.abs(g_w - jac).max() < TOL


def test_sampler_qnn_matches_statevector_and_finite_differences():
    st = build_student("q2")
    rng = np.random.default_rng(2)
    angles = np.asarray(st.input_angles(rng.normal(size=(3, 64))))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    sampler = EngineSampler()
    circuit = st.measured_circuit()

    def readout(i: int) -> int:
        return int(outcome_index(i, st.readout_qubits))

    qnn = SamplerQNN(circuit=circuit, input_params=st.input_params, weight_params=st.weight_params,
                     sampler=sampler, gradient=EngineSamplerGradient(sampler), interpret=readout, output_shape=4)
    fwd = qnn.forward(angles, weights)
    _, g_w = qnn.backward(angles, weights)
    unitary = _unitary(circuit)

    def oracle(w: np.ndarray) -> np.ndarray:  # Statevector read-out: qargs[0] is the low bit
        return np.array([Statevector(unitary.assign_parameters(r)).probabilities(list(st.readout_qubits))
                         for r in _rows(st, angles, w)])

    assert np.abs(fwd - oracle(weights)).max() < 1e-10
    eps = 1e-6
    for j in (0, 20, len(weights) - 1):
        up, down = weights.copy(), weights.copy()
        up[j] += eps
        down[j] -= eps
        assert np.abs(g_w[:, :, j] - (oracle(up) - oracle(down)) / (2 * eps)).max() < 1e-7
    out, jac = _engine_jacobian(st, angles, weights)
    assert np.abs(fwd - out).max() < TOL and np.abs(g_w - jac).max() < TOL


def test_torch_connector_step_matches_statevector_and_engine():
    """One training step through TorchConnector: outputs as Statevector's, loss and weight gradient
    as the engine's training path (the two routes a student can train by)."""
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
    outputs = conn(angles)
    ref_out = [[Statevector(st.circuit.assign_parameters(r)).expectation_value(o).real for o in st.observables()]
               for r in _rows(st, angles.numpy(), w0)]
    assert np.abs(outputs.detach().double().numpy() - ref_out).max() < 1e-6  # TorchConnector casts to float32
    loss = torch.nn.functional.cross_entropy(head(outputs.double()), y)
    loss.backward()
    w = torch.tensor(w0, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(head(compile_student(st)(angles, w)), y)
    g = torch.autograd.grad(ref, w)[0]
    assert abs(loss.item() - ref.item()) < 1e-5
    assert (conn.weight.grad.double() - g).abs().max() < 1e-5
