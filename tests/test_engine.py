"""Exactness of the torch engine against Qiskit's Statevector and parameter-shift gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Statevector
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

from qkd_qiskit.circuits import ARCHITECTURES, MuxRYGate, build_student, without_measurements
from qkd_qiskit.engine import QuantumLayer, compile_circuit, compile_student

TOL = 1e-6


def _bind(student, angles: np.ndarray, weights: np.ndarray) -> dict:
    return {**dict(zip(student.input_params, angles)), **dict(zip(student.weight_params, weights))}


def _reference_readout(student, angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Statevector of the circuit without its (mid-circuit) measurements, reduced to the readout."""
    psi = Statevector(without_measurements(student.circuit).assign_parameters(_bind(student, angles, weights)))
    if student.readout == "z":
        return np.array([psi.expectation_value(o).real for o in student.observables()])
    return psi.probabilities(list(student.readout_qubits))


@pytest.fixture(scope="module")
def students():
    return {name: build_student(name) for name in ARCHITECTURES}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 64))
    x[1] = (rng.random(64) > 0.5).astype(float)  # binary sample: zero sub-blocks in the tree
    return rng, x


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_readout_matches_statevector(students, data, name):
    rng, x = data
    st = students[name]
    angles = np.asarray(st.input_angles(x))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    for mode in ("factored", "dense"):
        out = compile_student(st, mode=mode)(torch.tensor(angles), torch.tensor(weights)).numpy()
        ref = np.stack([_reference_readout(st, a, weights) for a in angles])
        assert np.abs(out - ref).max() < TOL, mode


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_weight_gradients_match_parameter_shift(students, data, name):
    """Jacobian of every readout w.r.t. every weight, one sample (each weight sits in one
    RX/RY/RZ/RZZ gate with coefficient 1, so the +-pi/2 shift rule is exact)."""
    rng, x = data
    st = students[name]
    angles = np.asarray(st.input_angles(x[:1]))[0]
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    w = torch.tensor(weights, requires_grad=True)
    out = compile_student(st)(torch.tensor(angles)[None], w)[0]
    jac = np.stack([torch.autograd.grad(out[k], w, retain_graph=True)[0].numpy() for k in range(len(out))])
    qc = without_measurements(st.circuit).assign_parameters(dict(zip(st.input_params, angles)))
    shifted = []
    for j in range(len(weights)):
        for sign in (1, -1):
            wj = weights.copy()
            wj[j] += sign * np.pi / 2
            psi = Statevector(qc.assign_parameters(dict(zip(st.weight_params, wj))))
            if st.readout == "z":
                shifted.append([psi.expectation_value(o).real for o in st.observables()])
            else:
                shifted.append(psi.probabilities(list(st.readout_qubits)))
    shifted = np.array(shifted).reshape(len(weights), 2, -1)
    ref = (shifted[:, 0] - shifted[:, 1]).T / 2
    assert np.abs(jac - ref).max() < TOL


def test_gradients_match_qiskit_param_shift(students, data):
    """Cross-check with qiskit-machine-learning's own ParamShiftEstimatorGradient (HEA)."""
    rng, x = data
    st = students["hea"]
    angles = np.asarray(st.input_angles(x[:1]))[0]
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    params = list(st.circuit.parameters)
    bound = _bind(st, angles, weights)
    values = [bound[p] for p in params]
    grad = ParamShiftEstimatorGradient(StatevectorEstimator())
    obs = st.observables()[2]
    res = grad.run([st.circuit], [obs], [values], parameters=[list(st.weight_params)]).result()
    w = torch.tensor(weights, requires_grad=True)
    out = compile_student(st)(torch.tensor(angles)[None], w)[0, 2]
    ours = torch.autograd.grad(out, w)[0].numpy()
    assert np.abs(ours - res.gradients[0]).max() < TOL


def test_models_in_a_batch_are_independent(students):
    st = students["universal"]
    gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    layer = QuantumLayer(st, 3, gens, dtype=torch.float64)
    x = torch.rand(3, 8, 64, dtype=torch.float64)
    out = layer(x)
    grads = torch.autograd.grad(out[1].square().sum(), layer.weights)[0]
    assert grads[0].abs().max() == 0 and grads[2].abs().max() == 0
    for m in range(3):
        alone = compile_student(st)(layer.angles(x)[m:m + 1], layer.weights[m:m + 1].detach())
        assert torch.allclose(out[m], alone[0], atol=1e-12)
    # model m's init depends only on its own generator
    other = QuantumLayer(st, 2, [torch.Generator().manual_seed(4), torch.Generator().manual_seed(9)])
    assert torch.allclose(other.weights[0].double(), layer.weights[1], atol=1e-6)


def test_float32_matches_float64(students, data):
    _, x = data
    st = students["hea"]
    gens = [torch.Generator().manual_seed(0)]
    l32 = QuantumLayer(st, 1, gens, dtype=torch.float32)
    l64 = QuantumLayer(st, 1, [torch.Generator().manual_seed(0)], dtype=torch.float64)
    o32 = l32(torch.tensor(x, dtype=torch.float32)[None])
    o64 = l64(torch.tensor(x)[None])
    assert (o32.double() - o64).abs().max() < 1e-5
    g32 = torch.autograd.grad(o32.sum(), l32.weights)[0]
    g64 = torch.autograd.grad(o64.sum(), l64.weights)[0]
    assert (g32.double() - g64).abs().max() < 1e-4


def test_encoded_inputs_match_raw_features(students, data):
    _, x = data
    st = students["q3"]
    layer = QuantumLayer(st, 2, [torch.Generator().manual_seed(s) for s in (0, 1)], dtype=torch.float64)
    xs = torch.tensor(np.stack([x, x[::-1].copy()]))
    enc = layer.encode(xs)
    assert enc.shape == (2, 3, 64)
    psi = enc / enc.norm(dim=-1, keepdim=True)
    assert torch.allclose(psi, xs / xs.norm(dim=-1, keepdim=True), atol=1e-12)  # amplitude embedding
    assert torch.allclose(layer(encoded=enc), layer(xs), atol=1e-12)


# ------------------------------------------------------------------------------- general circuits


def _random_circuit(rng: np.random.Generator, n: int, xs, ws, depth: int = 24) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    pool = list(xs) + list(ws)

    def ang():
        p, q = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
        return [p, 2 * p + 0.3, p - q, 0.7, -p][rng.integers(5)]

    for _ in range(depth):
        a, b, c = (int(v) for v in rng.choice(n, 3, replace=False))
        g = rng.integers(20)
        [lambda: qc.rx(ang(), a), lambda: qc.ry(ang(), a), lambda: qc.rz(ang(), a), lambda: qc.h(a),
         lambda: qc.cx(a, b), lambda: qc.cz(a, b), lambda: qc.swap(a, b), lambda: qc.ccx(a, b, c),
         lambda: (qc.s(a), qc.t(b), qc.sdg(c)), lambda: (qc.x(a), qc.y(b), qc.z(c)),
         lambda: qc.u(ang(), ang(), ang(), a), lambda: qc.p(ang(), a), lambda: qc.crz(ang(), a, b),
         lambda: qc.cp(ang(), a, b), lambda: qc.rzz(ang(), a, b), lambda: qc.rxx(ang(), a, b),
         lambda: qc.cry(ang(), a, b), lambda: qc.append(MuxRYGate(2, [ang() for _ in range(4)]), [a, b, c]),
         lambda: qc.sx(a), lambda: qc.r(ang(), ang(), a)][g]()
    return qc


def test_random_circuits_match_statevector():
    """Any gate mix (incl. wrapped sub-circuits, affine expressions, inputs after entanglers)."""
    rng = np.random.default_rng(11)
    for trial in range(12):
        n = int(rng.integers(3, 6))
        xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
        qc = _random_circuit(rng, n, xs, ws)
        if trial % 3 == 0:
            outer = QuantumCircuit(n)
            outer.h(0)
            outer.append(qc.to_gate(), range(n))
            qc = outer
        x, w = rng.uniform(-3, 3, (2, 3)), rng.uniform(-3, 3, 4)
        for mode in ("factored", "dense"):
            prog = compile_circuit(qc, list(xs), list(ws), readout="probs",
                                   readout_qubits=list(range(n)), mode=mode, cache=False)
            out = prog(torch.tensor(x), torch.tensor(w)).numpy()
            for i in range(2):
                values = {**dict(zip(xs, x[i])), **dict(zip(ws, w))}
                psi = Statevector(qc.assign_parameters({p: values[p] for p in qc.parameters}))
                assert np.abs(psi.probabilities() - out[i]).max() < 1e-10


def test_gradcheck_inputs_and_weights():
    rng = np.random.default_rng(3)
    xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
    qc = _random_circuit(rng, 4, xs, ws, depth=16)
    prog = compile_circuit(qc, list(xs), list(ws), cache=False)
    a = torch.tensor(rng.uniform(-3, 3, (2, 2, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, (2, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: prog(a, w), (a, w), atol=1e-7)


@pytest.mark.parametrize("n", [3, 8, 9])
def test_other_sizes_and_modes(n):
    """Odd/even splits of the factored layout and the dense mode, HEA of n qubits."""
    st = build_student("hea", n_qubits=n, layers=2)
    rng = np.random.default_rng(n)
    angles = np.asarray(st.input_angles(rng.normal(size=(2, 2**n))))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    ref = np.stack([_reference_readout(st, a, w) for a in angles])
    for mode in ("factored", "dense") if n < 9 else ("factored",):
        out = compile_student(st, mode=mode)(torch.tensor(angles), torch.tensor(w)).numpy()
        assert np.abs(out - ref).max() < TOL


def test_split_kronecker_factors_match_statevector(monkeypatch):
    """Wide halves are applied as two Kronecker factors (FACTOR_MAX_QUBITS); forced down to 1 here
    so that small random circuits (per-sample stages, phases, permutations) take that path."""
    from qkd_qiskit import engine

    monkeypatch.setattr(engine, "FACTOR_MAX_QUBITS", 1)
    rng = np.random.default_rng(21)
    for _ in range(6):
        n = int(rng.integers(4, 7))
        xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
        qc = _random_circuit(rng, n, xs, ws, depth=14)
        x, w = rng.uniform(-3, 3, (2, 3)), rng.uniform(-3, 3, 4)
        prog = compile_circuit(qc, list(xs), list(ws), readout="probs", readout_qubits=list(range(n)),
                               mode="factored", cache=False)
        out = prog(torch.tensor(x), torch.tensor(w)).numpy()
        for i in range(2):
            values = {**dict(zip(xs, x[i])), **dict(zip(ws, w))}
            psi = Statevector(qc.assign_parameters({p: values[p] for p in qc.parameters}))
            assert np.abs(psi.probabilities() - out[i]).max() < 1e-10
    qc = _random_circuit(rng, 5, xs, ws, depth=16)
    prog = compile_circuit(qc, list(xs), list(ws), cache=False, mode="factored")
    a = torch.tensor(rng.uniform(-3, 3, (2, 2, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, (2, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: prog(a, w), (a, w), atol=1e-7)


def test_wide_register_matches_statevector():
    """11 qubits: the high half (6 qubits) is split into two factors with the default settings."""
    st = build_student("hea", n_qubits=11, layers=2)
    rng = np.random.default_rng(11)
    angles = np.asarray(st.input_angles(rng.normal(size=(2, 2**11))))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    ref = np.stack([_reference_readout(st, a, w) for a in angles])
    out = compile_student(st, mode="factored")(torch.tensor(angles), torch.tensor(w)).numpy()
    assert np.abs(out - ref).max() < TOL


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
    qc = QuantumCircuit(1)
    qc.ry(theta * theta, 0)
    with pytest.raises(ValueError, match="not affine"):
        compile_circuit(qc, [], [theta], cache=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(students, data):
    _, x = data
    st = students["universal"]
    layer = QuantumLayer(st, 2, [torch.Generator().manual_seed(s) for s in (0, 1)], dtype=torch.float64)
    xs = torch.tensor(np.stack([x, x]))
    cpu = layer(xs)
    gpu = layer.to("cuda")(xs.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-10)
