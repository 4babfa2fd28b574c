"""Idle weights (gates that cannot change a Z-basis read-out), found from the circuit structure and
checked numerically: the engine's gradient is 0 for them at random points, Statevector finite
differences agree, and every other weight moves the output somewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qkd_qiskit.circuit_report import architecture_table, omitted_note
from qkd_qiskit.circuits import (
    ARCHITECTURES,
    build_student,
    idle_weights,
    without_measurements,
)
from qkd_qiskit.engine import compile_student

EXPECTED = {"hea": 6, "universal": 6, "universal_h": 6, "q2": 1, "q3": 3, "q4": 4, "q5": 5}


def _readout(st, angles, weights):
    qc = without_measurements(st.circuit).assign_parameters(
        {**dict(zip(st.input_params, angles)), **dict(zip(st.weight_params, weights))})
    psi = Statevector(qc)
    if st.readout == "z":
        return np.array([psi.expectation_value(o).real for o in st.observables()])
    return psi.probabilities(list(st.readout_qubits))


def _engine_jacobian(st, angles, weights):
    w = torch.tensor(weights, requires_grad=True)
    out = compile_student(st)(torch.tensor(angles)[None], w)[0]
    return np.stack([torch.autograd.grad(out[k], w, retain_graph=True)[0].numpy() for k in range(len(out))])


def _students():
    yield from ((name, build_student(name)) for name in ARCHITECTURES)
    for enc in ("amplitude", "angle", "dense_angle"):  # the image students' ansatz
        yield f"rot_layers/{enc}", build_student("rot_layers", 4, 3, encoding=enc)


@pytest.mark.parametrize("name, st", list(_students()), ids=lambda v: v if isinstance(v, str) else "")
def test_idle_weights_have_zero_gradient_and_the_others_do_not(name, st):
    idle = idle_weights(st)
    if name in EXPECTED:
        assert len(idle) == EXPECTED[name]
    else:  # rot_layers: the last layer's RZ, one per qubit
        assert len(idle) == st.n_qubits
    idle_idx = [st.weight_params.index(w) for w in idle]
    live_idx = [j for j in range(len(st.weight_params)) if j not in idle_idx]
    rng = np.random.default_rng(3)
    moved = np.zeros(len(st.weight_params), dtype=bool)
    for _ in range(3):
        x = rng.normal(size=(1, st.n_features)) if st.encoding == "amplitude" else rng.random((1, st.n_features))
        angles = np.asarray(st.input_angles(x))[0]
        weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
        jac = _engine_jacobian(st, angles, weights)
        assert np.abs(jac[:, idle_idx]).max(initial=0.0) < 1e-12
        moved |= np.abs(jac).max(axis=0) > 1e-6
        for j in idle_idx[:2] + live_idx[:1] + live_idx[-1:]:  # an independent check: finite differences
            e = np.zeros_like(weights)
            e[j] = 1e-5
            fd = (_readout(st, angles, weights + e) - _readout(st, angles, weights - e)) / 2e-5
            assert np.abs(fd - jac[:, j]).max() < 1e-6
    assert moved[live_idx].all(), "a weight the analysis calls live never moved the output"


def test_the_table_reports_paper_counts_and_effective_counts():
    rows = {r["name"]: r for r in architecture_table(devices=())}
    assert rows["q2"]["total_params"] == 74 and rows["q2"]["effective_params"] == 73
    for name, idle in EXPECTED.items():
        r = rows[name]
        assert r["idle_weights"] == idle and r["effective_params"] == r["total_params"] - idle


def test_omitted_q_nd_note():
    assert "q3..q5" in omitted_note(3) and "n_d < qubits (3)" in omitted_note(3)
    assert omitted_note(6) is None and omitted_note(8) is None
    assert omitted_note(5).startswith("q5 not shown")
