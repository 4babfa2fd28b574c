"""The fused stage chain (qkd_qiskit.engine.fused) against independent references: Qiskit
``Statevector`` read-outs and probabilities, parameter-shift Jacobians, and for the input-state
gradient the closed form ``d <x|U^H O U|x> / dx = 2 Re(U^H O U) x`` from Qiskit's ``Operator``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_oracles import TOL, random_circuit, reference_readout, shift_jacobian, student
from qiskit.circuit import Parameter
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector

from qkd_qiskit.engine import compile_circuit, compile_student, fused, unfused

pytestmark = pytest.mark.skipif(not fused.kernels_available(), reason="numba not importable")


@pytest.fixture
def fused_calls(monkeypatch) -> list[int]:
    """Count the fused chain's calls (so a test fails if the eager path ran instead)."""
    calls: list[int] = []
    original = fused.fused_readout

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("qkd_qiskit.engine.compiled.fused_readout", spy)
    return calls


def weight_only_circuit(seed: int, n: int):
    """A random circuit of every gate kind the engine reads except the multiplexer (so every stage
    is a weight stage and the fused chain applies): phases (RZZ, CP, CRZ, P), permutations (CX,
    SWAP, CCX), dense 1-qubit gates."""
    rng = np.random.default_rng(seed)
    ws = [Parameter(f"w{i}") for i in range(5)]
    while True:
        qc = random_circuit(rng, n, [], ws, depth=30)
        if "mux_ry" not in qc.count_ops() and set(qc.parameters) == set(ws):
            return qc, ws


@pytest.mark.parametrize("seed", range(4))
def test_random_weight_circuits_match_statevector_and_parameter_shift(seed, fused_calls):
    n = 3 + seed  # 3-6 qubits: dense mode (<= 5) and factored mode both go through the fused chain
    qc, ws = weight_only_circuit(seed, n)
    w = np.random.default_rng(100 + seed).uniform(-np.pi, np.pi, len(ws))
    prog = compile_circuit(qc, [], ws, readout="probs")
    wt = torch.tensor(w, requires_grad=True)
    probs = prog(None, wt)
    assert fused_calls, "the fused chain did not run"
    ref = Statevector(qc.assign_parameters(dict(zip(ws, w)))).probabilities()
    assert np.abs(probs.detach().numpy() - ref).max() < 1e-12
    # gradient of a fixed linear function of the probabilities vs the +-pi/2 shift on Statevector
    # (RXX/U/R gates read one weight several times through affine angles, so shift per gate use is
    # not exact: a central finite difference on Statevector is the reference here)
    c = np.random.default_rng(seed).normal(size=ref.shape)
    (probs * torch.tensor(c)).sum().backward()
    eps, fd = 1e-6, []
    for j in range(len(ws)):
        vals = []
        for sign in (1, -1):
            wj = w.copy()
            wj[j] += sign * eps
            vals.append(c @ Statevector(qc.assign_parameters(dict(zip(ws, wj)))).probabilities())
        fd.append((vals[0] - vals[1]) / (2 * eps))
    assert np.abs(wt.grad.numpy() - np.array(fd)).max() < TOL


@pytest.mark.parametrize("name", ["hea", "universal_h", "q2", "q5"])
def test_students_match_statevector_and_parameter_shift(name, fused_calls):
    st = student(name)
    prog = compile_student(st)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 64))
    angles = np.asarray(st.input_angles(x))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    wt = torch.tensor(w, requires_grad=True)
    out = prog(torch.tensor(angles), wt)
    with torch.no_grad():  # evaluation keeps two states, not one per stage
        out_eval = prog(torch.tensor(angles), wt)
    assert len(fused_calls) == 2
    for b in range(2):
        ref = reference_readout(st, angles[b], w)
        assert np.abs(out[b].detach().numpy() - ref).max() < TOL
        assert np.abs(out_eval[b].numpy() - ref).max() < TOL
        jac = np.stack([torch.autograd.grad(out[b, k], wt, retain_graph=True)[0].numpy()
                        for k in range(out.shape[1])])
        assert np.abs(jac - shift_jacobian(st, angles[b], w)).max() < TOL


def test_float32_models_batch_matches_statevector(fused_calls):
    """24 models at once in float32 (the trainer's case), each against its own Statevector."""
    st = student("hea")
    prog = compile_student(st)
    rng = np.random.default_rng(5)
    w = rng.uniform(0, 2 * np.pi, (24, len(st.weight_params)))
    x = rng.normal(size=(24, 4, 64))
    enc = torch.tensor(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=torch.float32)
    out = prog.forward_encoded(enc, torch.tensor(w, dtype=torch.float32)).numpy()
    assert fused_calls
    angles = np.asarray(st.input_angles(x.reshape(-1, 64))).reshape(24, 4, -1)
    for m in (0, 11, 23):
        for b in range(4):
            assert np.abs(out[m, b] - reference_readout(st, angles[m, b], w[m])).max() < 5e-6


def test_input_state_gradient_matches_operator_closed_form(fused_calls):
    """``f(x) = <x|U^H Z_0 U|x>`` for a real input state x: ``grad f = 2 Re(U^H Z_0 U) x``."""
    st = student("hea", n_qubits=4, layers=2)
    prog = compile_student(st)
    rng = np.random.default_rng(9)
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    x = rng.normal(size=16)
    x /= np.linalg.norm(x)
    xt = torch.tensor(x[None, None, :], requires_grad=True)
    out = prog.forward_encoded(xt, torch.tensor(w)[None])
    out[0, 0, 0].backward()
    assert fused_calls
    u = Operator(ansatz_without_prep(st, w)).data  # what acts on the prepared state x
    z0 = SparsePauliOp("I" * (4 - 1 - st.readout_qubits[0]) + "Z" + "I" * st.readout_qubits[0]).to_matrix()
    a = u.conj().T @ z0 @ u
    assert abs(out[0, 0, 0].item() - (x @ a @ x).real) < 1e-12
    assert np.abs(xt.grad.numpy()[0, 0] - 2 * a.real @ x).max() < 1e-12


def ansatz_without_prep(st, w):
    """The student circuit's weight part (every instruction that reads no input parameter)."""
    from qiskit import QuantumCircuit

    inputs = set(st.input_params)
    qc = QuantumCircuit(st.circuit.num_qubits)
    for inst in st.circuit.data:
        if inst.operation.name in ("measure", "barrier"):
            continue
        params = {p for v in inst.operation.params if hasattr(v, "parameters") for p in v.parameters}
        if params & inputs:
            continue
        qc.append(inst.operation, [st.circuit.find_bit(q).index for q in inst.qubits])
    return qc.assign_parameters(dict(zip(st.weight_params, w)))


def test_graph_kept_for_two_backwards_keeps_its_states(fused_calls):
    """Workspaces are reused only once their graph is gone: a second forward while the first
    graph is alive must not overwrite it (both gradients against parameter shift)."""
    st = student("hea")
    prog = compile_student(st)
    rng = np.random.default_rng(4)
    angles = torch.tensor(np.asarray(st.input_angles(rng.normal(size=(1, 64)))))
    w1, w2 = (torch.tensor(rng.uniform(0, 2 * np.pi, len(st.weight_params)), requires_grad=True) for _ in range(2))
    out1 = prog(angles, w1)
    out2 = prog(angles, w2)  # same shapes: would take out1's workspace if it were free
    out1[0, 0].backward(retain_graph=True)
    out2[0, 0].backward()
    g1 = w1.grad.clone()
    w1.grad = None
    out1[0, 0].backward(retain_graph=True)  # a second backward through the kept graph
    g1b = w1.grad.clone()
    w1.grad = None
    prog(angles, w2.detach() + 1.0)  # takes out1's workspace (its backward has run) ...
    out1[0, 0].backward()  # ... so this third backward must recompute out1's states
    for w, g in ((w1, g1), (w1, g1b), (w1, w1.grad), (w2, w2.grad)):
        ref = shift_jacobian(st, angles[0].numpy(), w.detach().numpy())[0]
        assert np.abs(g.numpy() - ref).max() < TOL
    assert len(fused_calls) == 3


def test_unfused_block_runs_the_eager_path(fused_calls):
    st = student("hea")
    prog = compile_student(st)
    rng = np.random.default_rng(2)
    angles = np.asarray(st.input_angles(rng.normal(size=(1, 64))))
    w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    with unfused():
        out = prog(torch.tensor(angles), torch.tensor(w))
    assert not fused_calls
    assert np.abs(out[0].numpy() - reference_readout(st, angles[0], w)).max() < TOL


@pytest.mark.parametrize("name", ["q3", "hea"])
def test_recomputed_backward_matches_parameter_shift(name, fused_calls, monkeypatch):
    """Above ``RECOMPUTE_BYTES`` of kept states the forward keeps none and the backward recomputes
    each model's states next to its backward: each model's gradient against parameter shift, and
    (as documented) bit for bit the gradient of the kept path."""
    st = student(name)
    prog = compile_student(st)
    rng = np.random.default_rng(11)
    m, b = 3, 2
    angles = np.asarray(st.input_angles(rng.normal(size=(m * b, 64)))).reshape(m, b, -1)
    w = rng.uniform(0, 2 * np.pi, (m, len(st.weight_params)))
    c = rng.normal(size=(m, b, prog.n_outputs))
    kernels = fused._KERNELS
    recomputed = []
    original = kernels.chain_backward_recompute
    monkeypatch.setattr(kernels, "chain_backward_recompute", lambda *a: recomputed.append(1) or original(*a))
    grads = {}
    for limit in (0, 1 << 40):
        monkeypatch.setattr(fused, "RECOMPUTE_BYTES", limit)
        wt = torch.tensor(w, requires_grad=True)
        (prog(torch.tensor(angles), wt) * torch.tensor(c)).sum().backward()
        grads[limit] = wt.grad
    assert recomputed == [1] and len(fused_calls) == 2
    for k in range(m):
        ref = sum(c[k, j] @ shift_jacobian(st, angles[k, j], w[k]) for j in range(b))
        assert np.abs(grads[0][k].numpy() - ref).max() < TOL
    assert torch.equal(grads[0], grads[1 << 40])


def test_every_numba_kernel_lives_in_fused_kernels():
    """numba's disk cache checks only the cached function's own source file: a kernel calling the
    kernels of another file would run stale machine code from its cache after that file changed."""
    from pathlib import Path

    import qkd_qiskit

    package = Path(qkd_qiskit.__file__).parent
    elsewhere = [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))
                 if "njit" in p.read_text() and p.name != "fused_kernels.py"]
    assert elsewhere == []
