"""The engine's read-out of every student architecture, size and mode against Qiskit's Statevector."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_oracles import TOL, features, reference_readout, spy_split_factors, student

from qkd_qiskit.circuits import ARCHITECTURES
from qkd_qiskit.engine import compile_student


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_readout_matches_statevector(name):
    st = student(name)
    rng = np.random.default_rng(1)
    angles = np.asarray(st.input_angles(features()))
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    ref = np.stack([reference_readout(st, a, weights) for a in angles])
    for mode in ("factored", "dense"):
        out = compile_student(st, mode=mode)(torch.tensor(angles), torch.tensor(weights)).numpy()
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() < TOL, mode


@pytest.mark.parametrize("n", [3, 8, 9])
def test_other_sizes_and_modes(n):
    """Odd/even splits of the factored layout and the dense mode, HEA of n qubits."""
    st = student("hea", n_qubits=n, layers=2)
    rng = np.random.default_rng(n)
    angles = np.asarray(st.input_angles(rng.normal(size=(2, 2**n))))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    ref = np.stack([reference_readout(st, a, w) for a in angles])
    for mode in ("factored", "dense") if n < 9 else ("factored",):
        prog = compile_student(st, mode=mode)
        assert prog.mode == mode
        out = prog(torch.tensor(angles), torch.tensor(w)).numpy()
        assert np.abs(out - ref).max() < TOL


def test_auto_mode_switches_at_dense_max_qubits():
    from qkd_qiskit.engine import DENSE_MAX_QUBITS

    small = student("hea", n_qubits=DENSE_MAX_QUBITS, layers=1)
    large = student("hea", n_qubits=DENSE_MAX_QUBITS + 1, layers=1)
    assert compile_student(small).mode == "dense" and compile_student(large).mode == "factored"


def test_wide_register_matches_statevector(monkeypatch):
    """11 qubits: the high half (6 qubits) is split into two factors with the default settings
    (in the eager path; the fused chain applies each half whole)."""
    monkeypatch.setattr("qkd_qiskit.engine.fused.FUSED", False)
    calls = spy_split_factors(monkeypatch)
    st = student("hea", n_qubits=11, layers=2)
    rng = np.random.default_rng(11)
    angles = np.asarray(st.input_angles(rng.normal(size=(2, 2**11))))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    ref = np.stack([reference_readout(st, a, w) for a in angles])
    out = compile_student(st, mode="factored")(torch.tensor(angles), torch.tensor(w)).numpy()
    assert any(calls), "the split (two-factor) path was not taken"
    assert np.abs(out - ref).max() < TOL
