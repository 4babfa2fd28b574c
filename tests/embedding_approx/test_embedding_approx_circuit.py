"""The approximate amplitude embedding against independent oracles: Qiskit ``Statevector`` of the
circuit decomposed into RY + CX (its definition, not our matrix), the normalised input vector, and
hand-built block-diagonal matrices of the Walsh series."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import transpile
from qiskit.quantum_info import Operator, Statevector

from qkd_qiskit.circuits import (TruncatedMuxRYGate, amplitude_embedding, approx_amplitude_angles,
                                 approx_amplitude_embedding, build_student, embedding_fidelity, full_cx,
                                 select_terms, terms_cx)
from qkd_qiskit.data import load_dataset
from qkd_qiskit.engine import compile_student


def ry_cx(circuit):
    """The circuit as the device sees it before routing: RY and CX only (through gate definitions)."""
    return transpile(circuit, basis_gates=["ry", "cx", "rz", "sx", "x"], optimization_level=0)


def signed_data(n_rows, n_features, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_rows, n_features)) * rng.integers(0, 2, (n_rows, n_features)) + 0.01


@pytest.mark.parametrize("n", [3, 4])
def test_all_terms_prepare_the_normalised_vector_exactly(n):
    x = signed_data(4, 2**n, seed=n)
    terms = select_terms(x, n, full_cx(n))
    assert terms == tuple(range(2**n - 1))
    circuit = ry_cx(approx_amplitude_embedding(n, terms))
    assert circuit.count_ops()["cx"] == ry_cx(amplitude_embedding(n)).count_ops()["cx"] == 2**n - 2
    for row, angles in zip(x, approx_amplitude_angles(x, n, terms)):
        psi = Statevector(circuit.assign_parameters(angles)).data
        assert np.allclose(psi, row / np.linalg.norm(row), atol=1e-9)


@pytest.mark.parametrize("kept_cx", [0, 2, 5, 9])
def test_one_fixed_circuit_with_the_budgeted_cx_and_the_reported_fidelity(kept_cx):
    n, x = 4, signed_data(6, 16, seed=7)
    terms = select_terms(x, n, kept_cx)
    circuit = ry_cx(approx_amplitude_embedding(n, terms))  # transpiled once, parameters unbound
    cx = circuit.count_ops().get("cx", 0)
    assert cx == terms_cx(terms, n) <= kept_cx
    fidelity = embedding_fidelity(x, n, terms)
    for row, angles, f in zip(x, approx_amplitude_angles(x, n, terms), fidelity):
        psi = Statevector(circuit.assign_parameters(angles)).data
        assert abs(psi @ (row / np.linalg.norm(row))) ** 2 == pytest.approx(f, abs=1e-9)


def test_truncated_multiplexer_is_the_walsh_series_by_hand():
    masks, phis = [0, 3, 5], [0.4, -1.1, 0.7]
    gate = TruncatedMuxRYGate(3, masks, phis)
    thetas = [sum(p * (-1) ** bin(c & g).count("1") for g, p in zip(masks, phis)) for c in range(8)]
    mat = np.zeros((16, 16))
    for c, t in enumerate(thetas):  # index = control state + 8 * target bit
        mat[np.ix_([c, c + 8], [c, c + 8])] = [[np.cos(t / 2), -np.sin(t / 2)], [np.sin(t / 2), np.cos(t / 2)]]
    assert np.allclose(Operator(ry_cx(gate.definition)).data, mat, atol=1e-12)
    assert ry_cx(gate.definition).count_ops()["cx"] == 6  # 0 -> 011 -> 101 -> 0: 2 + 2 + 2
    assert np.allclose(Operator(gate.inverse()).data, mat.T, atol=1e-12)


def test_fidelity_grows_with_the_kept_cx_on_the_xor_data():
    data = load_dataset("xor", n_samples=300, n_bits=64, seed=0)
    means = [embedding_fidelity(data.x_test, 6, select_terms(data.x_train, 6, k)).mean() for k in (0, 16, 32, 48, 62)]
    assert all(b >= a - 1e-3 for a, b in zip(means, means[1:])), means
    assert means[0] < 0.6 and means[-1] == pytest.approx(1.0, abs=1e-12)


def test_engine_simulates_the_approximate_student_like_statevector():
    n, x = 4, signed_data(5, 16, seed=3)
    student = build_student("hea", n_qubits=n, layers=2, embedding_terms=select_terms(x, n, 4))
    program = compile_student(student)
    assert program.encodable  # the truncated tree stays in the engine's product-form preparation
    weights = np.random.default_rng(0).uniform(0, 2 * np.pi, len(student.weight_params))
    angles = np.asarray(student.input_angles(x))
    got = program(torch.tensor(angles[None]), torch.tensor(weights[None]))[0].numpy()
    circuit = ry_cx(student.circuit)
    for row, a in zip(got, angles):
        bound = circuit.assign_parameters(dict(zip(student.input_params + student.weight_params, [*a, *weights])))
        psi = Statevector(bound)
        assert np.allclose(row, [psi.expectation_value(o).real for o in student.observables()], atol=1e-6)
