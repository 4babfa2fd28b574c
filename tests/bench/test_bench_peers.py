"""``qkd bench`` peers: a peer that is not installed is a skip with its reason, never an error; a
JAX peer's read-outs equal Qiskit Statevector's on the same weights."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qkd_qiskit.bench.peers import peer_summary
from qkd_qiskit.bench.pennylane import bench_pennylane
from qkd_qiskit.bench.pennylane_jax import bench_pennylane_jax
from qkd_qiskit.bench.run import print_peers
from qkd_qiskit.bench.tensorcircuit import bench_tensorcircuit
from qkd_qiskit.circuits import build_student, without_measurements


@pytest.fixture(scope="module")
def student():
    return build_student("hea", 6, 2)


def test_missing_peers_are_skipped_with_their_reason(student, monkeypatch, capsys):
    for name in ("jax", "tensorcircuit", "pennylane", "pennylane_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError
    steps = {**bench_tensorcircuit(student, quick=True, models=(1, 24)), **bench_pennylane_jax(student, quick=True),
             **bench_pennylane(student, quick=True)}
    assert set(steps) == {"tensorcircuit", "tensorcircuit_24", "pennylane_jax", "pennylane", "pennylane_lightning"}
    assert all("not importable" in r["skipped"] and "qkd-qiskit[bench]" in r["skipped"] for r in steps.values())
    summary = peer_summary({**steps, "engine_1_encoded": {"per_model_ms": 1.0, "models": 1}})
    assert summary == {"single": None, "batched": None}
    print_peers(summary)
    assert "no peer timed" in capsys.readouterr().out


def test_tensorcircuit_readouts_match_statevector(student):
    pytest.importorskip("jax")
    pytest.importorskip("tensorcircuit")
    from qkd_qiskit.bench.tensorcircuit import tensorcircuit_expvals

    rng = np.random.default_rng(0)
    x = (rng.random((2, 64)) > 0.5).astype(np.float32) + 0.05
    w = rng.uniform(0, 2 * np.pi, len(student.weight_params)).astype(np.float32)
    got = np.asarray(tensorcircuit_expvals(student)(x, w))
    qc = without_measurements(student.circuit)
    for i, angles in enumerate(np.asarray(student.input_angles(x.astype(np.float64)))):
        values = {**dict(zip(student.input_params, angles)), **dict(zip(student.weight_params, w.astype(float)))}
        psi = Statevector(qc.assign_parameters(values))
        ref = [psi.expectation_value(o).real for o in student.observables()]
        assert np.abs(got[i] - ref).max() < 1e-5
