"""General circuits (any gate mix, read-outs on any qubits, mid-circuit measurements, the final
state) against Qiskit's Statevector, in both modes and on the split-factor path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_oracles import random_circuit, spy_split_factors, statevector
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp

from qkd_qiskit.circuits import MuxRYGate
from qkd_qiskit.engine import compile_circuit, kron


def _values(xs, ws, x, w) -> dict:
    return {**dict(zip(xs, x)), **dict(zip(ws, w))}


def test_random_circuits_match_statevector():
    """Any gate mix (incl. wrapped sub-circuits, affine expressions, inputs after entanglers)."""
    rng = np.random.default_rng(11)
    for trial in range(12):
        n = int(rng.integers(3, 6))
        xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
        qc = random_circuit(rng, n, xs, ws)
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
                assert np.abs(statevector(qc, _values(xs, ws, x[i], w)).probabilities() - out[i]).max() < 1e-10


@pytest.mark.parametrize("mode", ["factored", "dense"])
def test_readout_on_any_qubits_in_any_order(mode):
    """``"z"``: <Z_q> per read-out qubit; ``"probs"``: outcome index ``sum_j bit(q_j) << j``."""
    rng = np.random.default_rng(5)
    xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
    qc = random_circuit(rng, 5, xs, ws, depth=30)
    qubits = [3, 0, 4]
    x, w = rng.uniform(-3, 3, (2, 3)), rng.uniform(-3, 3, 4)
    z = compile_circuit(qc, list(xs), list(ws), readout_qubits=qubits, mode=mode, cache=False)
    p = compile_circuit(qc, list(xs), list(ws), readout_qubits=qubits, readout="probs", mode=mode, cache=False)
    assert (z.n_outputs, p.n_outputs) == (3, 8)
    z_out, p_out = z(torch.tensor(x), torch.tensor(w)).numpy(), p(torch.tensor(x), torch.tensor(w)).numpy()
    for i in range(2):
        psi = statevector(qc, _values(xs, ws, x[i], w))
        ref_z = [psi.expectation_value(SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], 5)).real for q in qubits]
        assert np.abs(z_out[i] - ref_z).max() < 1e-10
        assert np.abs(p_out[i] - psi.probabilities(qubits)).max() < 1e-10


@pytest.mark.parametrize("mode", ["factored", "dense"])
def test_state_matches_statevector_up_to_global_phase(mode):
    rng = np.random.default_rng(8)
    xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
    qc = random_circuit(rng, 4, xs, ws, depth=30)
    x, w = rng.uniform(-3, 3, (3, 3)), rng.uniform(-3, 3, 4)
    states = compile_circuit(qc, list(xs), list(ws), mode=mode, cache=False).state(torch.tensor(x), torch.tensor(w))
    assert states.shape == (3, 16) and states.is_complex()
    for i in range(3):
        ref = statevector(qc, _values(xs, ws, x[i], w)).data
        overlap = np.vdot(ref, states[i].numpy())
        assert abs(abs(overlap) - 1) < 1e-10
        assert np.abs(states[i].numpy() - overlap * ref).max() < 1e-10


def test_mux_on_a_used_target_matches_statevector():
    """A multiplexed RY whose target is no longer |0> (not part of the prep)."""
    xs, ws = ParameterVector("x", 4), ParameterVector("w", 2)
    qc = QuantumCircuit(3)
    qc.h(range(3))
    qc.rx(ws[0], 0)
    qc.append(MuxRYGate(2, [xs[0], 2 * xs[1], xs[2] - ws[1], xs[3]]), [0, 2, 1])
    qc.cx(1, 0)
    x, w = np.array([[0.3, -1.2, 2.0, 0.7]]), np.array([0.4, -0.9])
    for mode in ("factored", "dense"):
        out = compile_circuit(qc, list(xs), list(ws), readout="probs", mode=mode, cache=False)(
            torch.tensor(x), torch.tensor(w)).numpy()
        assert np.abs(out[0] - statevector(qc, _values(xs, ws, x[0], w)).probabilities()).max() < 1e-10


def test_mid_circuit_measurements_are_marginalised():
    """Deferred measurement: measured qubits stay idle, their clbits map back to them."""
    ws = ParameterVector("w", 3)
    qc = QuantumCircuit(3, 3)
    qc.ry(ws[0], 0)
    qc.cx(0, 1)
    qc.measure(0, 2)
    qc.rx(ws[1], 1)
    qc.cx(1, 2)
    qc.measure(1, 0)
    qc.ry(ws[2], 2)
    w = np.array([0.8, -1.1, 2.3])
    prog = compile_circuit(qc, [], list(ws), readout="probs", readout_qubits=[2, 0], cache=False)
    assert prog.clbit_qubits == {2: 0, 0: 1} and prog.n_clbits == 3
    ref = statevector(qc.remove_final_measurements(inplace=False), dict(zip(ws, w)))
    assert np.abs(prog(None, torch.tensor(w)).numpy() - ref.probabilities([2, 0])).max() < 1e-12


def test_split_kronecker_factors_match_statevector(monkeypatch):
    """Wide halves are applied as two Kronecker factors (FACTOR_MAX_QUBITS); forced down to 1 here
    so that small random circuits (per-sample stages, phases, permutations) take that path."""
    monkeypatch.setattr(kron, "FACTOR_MAX_QUBITS", 1)
    calls = spy_split_factors(monkeypatch)
    rng = np.random.default_rng(21)
    for _ in range(6):
        n = int(rng.integers(4, 7))
        xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
        qc = random_circuit(rng, n, xs, ws, depth=14)
        x, w = rng.uniform(-3, 3, (2, 3)), rng.uniform(-3, 3, 4)
        prog = compile_circuit(qc, list(xs), list(ws), readout="probs", readout_qubits=list(range(n)),
                               mode="factored", cache=False)
        out = prog(torch.tensor(x), torch.tensor(w)).numpy()
        for i in range(2):
            assert np.abs(statevector(qc, _values(xs, ws, x[i], w)).probabilities() - out[i]).max() < 1e-10
    assert any(calls), "the split (two-factor) path was not taken"
    qc = random_circuit(rng, 5, xs, ws, depth=16)
    prog = compile_circuit(qc, list(xs), list(ws), cache=False, mode="factored")
    a = torch.tensor(rng.uniform(-3, 3, (2, 2, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, (2, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: prog(a, w), (a, w), atol=1e-7)
