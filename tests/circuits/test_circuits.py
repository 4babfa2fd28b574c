"""Tests of the circuit library: embedding exactness, gate semantics, ansatz unitaries built
independently with numpy, dynamic q_nd read-out under Aer, and transpilation to IBM fake devices."""

from __future__ import annotations

import io
from functools import reduce

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit, qpy, transpile
from qiskit.circuit.library import StatePreparation
from qiskit.quantum_info import Operator, Statevector, partial_trace, state_fidelity
from qiskit_aer import AerSimulator

from qkd_qiskit.backends.devices import fake_device, preset_pass_manager
from qkd_qiskit.circuit_report import TRANSPILE_SEED, architecture_table, draw_student
from qkd_qiskit.circuits import (
    ARCHITECTURES,
    MuxRYGate,
    amplitude_angles,
    amplitude_embedding,
    build_student,
    readout_distribution,
    without_measurements,
)
from qkd_qiskit.models import build_model, count_params

ATOL = 1e-10

# ---------------------------------------------------------------------------------------------
# Independent numpy reference gates (little-endian: qubit 0 is the rightmost kron factor)
# ---------------------------------------------------------------------------------------------


def rx(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def ry(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -s], [s, c]])


def rz(t):
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)


def on_qubit(m, q, n):
    ops = [np.eye(2)] * n
    ops[q] = m
    return reduce(np.kron, ops[::-1])


def layer_of(ms, qubits, n):
    return reduce(lambda acc, qm: on_qubit(qm[1], qm[0], n) @ acc, zip(qubits, ms), np.eye(2**n))


def rzz(a, b, t, n):
    idx = np.arange(2**n)
    zz = (1 - 2 * ((idx >> a) & 1)) * (1 - 2 * ((idx >> b) & 1))
    return np.diag(np.exp(-0.5j * t * zz))


def cx(c, t, n):
    idx = np.arange(2**n)
    out = idx ^ (((idx >> c) & 1) << t)
    m = np.zeros((2**n, 2**n))
    m[out, idx] = 1
    return m


def ring_pairs(qubits):
    m = len(qubits)
    if m < 3:
        return [(qubits[0], qubits[1])] if m == 2 else []
    return [(qubits[i], qubits[(i + 1) % m]) for i in range(m)]


def universal_layer_ref(w, qubits, n):
    """RX on each active qubit, RY on each, then RZZ on the ring of active qubits."""
    m = len(qubits)
    u = layer_of([rx(t) for t in w[:m]], qubits, n)
    u = layer_of([ry(t) for t in w[m : 2 * m]], qubits, n) @ u
    pairs = ring_pairs(qubits)
    for (a, b), t in zip(pairs, w[2 * m : 2 * m + len(pairs)]):
        u = rzz(a, b, t, n) @ u
    return u, 2 * m + len(pairs)


def ansatz_ref(name, w, n, layers):
    """Expected ansatz unitary (plus the H layer of universal_h), from numpy only."""
    w = list(w)
    if name == "hea":
        u, k = np.eye(2**n), 0
        for r in range(layers + 1):
            u = layer_of([ry(t) for t in w[k : k + n]], range(n), n) @ u
            u = layer_of([rz(t) for t in w[k + n : k + 2 * n]], range(n), n) @ u
            k += 2 * n
            if r < layers:
                for q in range(n - 1):
                    u = cx(q, q + 1, n) @ u
        assert k == len(w)
        return u
    if name in ("universal", "universal_h"):
        u = layer_of([H] * n, range(n), n) if name == "universal_h" else np.eye(2**n)
        active = [list(range(n))] * layers
    else:
        n_d = int(name[1:])
        u = np.eye(2**n)
        active = [list(range(min(j, n - n_d), n)) for j in range(layers)]
    k = 0
    for qubits in active:
        lu, used = universal_layer_ref(w[k:], qubits, n)
        u, k = lu @ u, k + used
    assert k == len(w)
    return u


def bind(student, x, w):
    values = dict(zip(student.input_params, student.input_angles(x[None, :])[0]))
    values.update(zip(student.weight_params, w))
    return values


# ---------------------------------------------------------------------------------------------
# Amplitude embedding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 7))
def test_embedding_prepares_normalised_vector(n):
    rng = np.random.default_rng(n)
    emb = amplitude_embedding(n)
    assert emb.num_parameters == 2**n - 1
    lengths = sorted({1, max(1, 2**n - 1), 2**n, max(1, 2**n // 2 + 1)})
    for length in lengths:
        batch = np.vstack([
            rng.normal(size=length),                      # signed
            np.abs(rng.normal(size=length)),              # non-negative
            rng.integers(0, 2, size=length) + (np.arange(length) == 0),  # binary, zero blocks
            -np.eye(length)[length - 1],                  # single negative entry
        ])
        angles = amplitude_angles(batch, n)
        assert angles.shape == (4, 2**n - 1)
        for x, a in zip(batch, angles):
            target = np.zeros(2**n)
            target[:length] = x / np.linalg.norm(x)
            bound = emb.assign_parameters(a)
            psi = Statevector(bound).data
            np.testing.assert_allclose(psi, target, atol=ATOL)
            oracle = Statevector(StatePreparation(target)).data  # exact up to a global phase
            phase = np.vdot(oracle, psi)
            assert abs(abs(phase) - 1) < ATOL
            np.testing.assert_allclose(psi, phase * oracle, atol=ATOL)
            # Through the RY/CX definition as well (what transpilers and QPY see).
            via_def = Statevector(bound.decompose(gates_to_decompose=["mux_ry"])).data
            np.testing.assert_allclose(via_def, target, atol=ATOL)


def test_embedding_structure_follows_contract():
    n = 4
    emb = amplitude_embedding(n)
    ops = [(inst.operation.name, [emb.find_bit(q).index for q in inst.qubits]) for inst in emb.data]
    assert ops == [("ry", [3]), ("mux_ry", [3, 2]), ("mux_ry", [2, 3, 1]), ("mux_ry", [1, 2, 3, 0])]
    flat = [p for inst in emb.data for p in inst.operation.params]
    assert flat == list(emb.parameters)  # circuit parameter order == level-major angle order
    assert all(isinstance(inst.operation, MuxRYGate) for inst in emb.data[1:])


def test_one_dimensional_input_and_padding():
    x = np.array([3.0, -4.0])
    a1 = amplitude_angles(x, 2)
    a2 = amplitude_angles(x[None, :], 2)
    assert a1.shape == (3,) and a2.shape == (1, 3)
    np.testing.assert_allclose(a1, a2[0])
    psi = Statevector(amplitude_embedding(2).assign_parameters(a1)).data
    np.testing.assert_allclose(psi, [0.6, -0.8, 0, 0], atol=ATOL)


def test_torch_angles_match_numpy_and_have_finite_gradients():
    rng = np.random.default_rng(7)
    n = 6
    x = np.vstack([rng.normal(size=(4, 64)), rng.integers(0, 2, size=(4, 64)), np.eye(64)[[5, 40]]])
    x[4:8, 0] = 1.0
    ref = amplitude_angles(x, n)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    at = amplitude_angles(xt, n)
    assert isinstance(at, torch.Tensor) and at.shape == (10, 63)
    np.testing.assert_allclose(at.detach().numpy(), ref, atol=1e-12)
    (at * torch.tensor(rng.normal(size=(10, 63)))).sum().backward()
    assert torch.isfinite(xt.grad).all()
    # float32 (training dtype) and padding: same angles up to float32 precision.
    a32 = amplitude_angles(torch.tensor(x[:, :50], dtype=torch.float32), n)
    assert a32.dtype == torch.float32
    np.testing.assert_allclose(a32.numpy(), amplitude_angles(x[:, :50], n), atol=1e-5)


def test_torch_angles_gradcheck():
    x = torch.tensor(np.random.default_rng(3).normal(size=(3, 7)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: amplitude_angles(v, 3), (x,))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bad_inputs_name_the_sample(backend):
    def call(arr, n=3):
        arr = torch.tensor(arr) if backend == "torch" else arr
        return amplitude_angles(arr, n)

    x = np.random.default_rng(0).normal(size=(5, 8))
    bad = x.copy()
    bad[3] = 0
    with pytest.raises(ValueError, match="sample 3: vector is all zeros"):
        call(bad)
    for value in (np.nan, np.inf):
        bad = x.copy()
        bad[1, 4] = value
        with pytest.raises(ValueError, match="sample 1: .*non-finite"):
            call(bad)
    with pytest.raises(ValueError, match="sample 0: vector has 9 entries"):
        call(np.ones((2, 9)))
    student = build_student("hea", n_qubits=3, layers=1, n_features=6)
    with pytest.raises(ValueError, match="sample 0: vector has 7 entries, more than 6"):
        student.input_angles(np.ones((1, 7)))


# ---------------------------------------------------------------------------------------------
# MuxRYGate
# ---------------------------------------------------------------------------------------------


def mux_reference(thetas):
    """Block-diagonal matrix by hand: index = control state + 2^k * target bit."""
    size = len(thetas)
    m = np.zeros((2 * size, 2 * size))
    for c, t in enumerate(thetas):
        block = ry(t)
        for a in range(2):
            for b in range(2):
                m[c + size * a, c + size * b] = block[a, b]
    return m


@pytest.mark.parametrize("k", range(0, 6))
def test_mux_ry_definition_matches_semantics(k):
    rng = np.random.default_rng(k)
    thetas = rng.uniform(-2 * np.pi, 2 * np.pi, size=2**k)
    gate = MuxRYGate(k, thetas)
    ref = mux_reference(thetas)
    definition = gate.definition
    if k >= 1:
        assert definition.count_ops() == {"ry": 2**k, "cx": 2**k}
    np.testing.assert_allclose(Operator(definition).data, ref, atol=ATOL)
    np.testing.assert_allclose(Operator(gate).data, ref, atol=ATOL)  # __array__
    np.testing.assert_allclose(Operator(gate.inverse()).data, ref.T, atol=ATOL)
    # Parameterised definition, bound afterwards (the embedding's path).
    from qiskit.circuit import ParameterVector

    pv = ParameterVector("p", 2**k)
    sym = MuxRYGate(k, pv).definition.assign_parameters(dict(zip(pv, thetas)))
    np.testing.assert_allclose(Operator(sym).data, ref, atol=ATOL)


def test_mux_ry_control_order_in_a_circuit():
    """Controls (q2, q0), target q1: control state c = bit(q2) + 2 * bit(q0)."""
    thetas = [0.3, -1.1, 2.0, 0.7]
    qc = QuantumCircuit(3)
    qc.append(MuxRYGate(2, thetas), [2, 0, 1])
    expected = np.zeros((8, 8))
    for i in range(8):
        c = ((i >> 2) & 1) + 2 * (i & 1)
        for bit in range(2):
            j = (i & ~2) | (bit << 1)
            expected[j, i] = ry(thetas[c])[bit, (i >> 1) & 1]
    np.testing.assert_allclose(Operator(qc).data, expected, atol=ATOL)
    np.testing.assert_allclose(Operator(qc.decompose()).data, expected, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Students and ansatzes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_student_state_matches_independent_unitary(name):
    n, layers = 6, 5
    rng = np.random.default_rng(ARCHITECTURES.index(name))
    student = build_student(name, n, layers)
    x = rng.normal(size=64)
    w = rng.uniform(-np.pi, np.pi, size=len(student.weight_params))
    values = bind(student, x, w)
    assert set(values) == set(student.circuit.parameters)
    psi = Statevector(without_measurements(student.circuit).assign_parameters(values)).data
    expected = ansatz_ref(name, w, n, layers) @ (x / np.linalg.norm(x))
    np.testing.assert_allclose(psi, expected, atol=ATOL)


@pytest.mark.parametrize("name,n,layers", [("hea", 2, 1), ("universal", 2, 2), ("universal", 3, 2),
                                           ("universal_h", 1, 2), ("q2", 3, 2), ("q3", 5, 3)])
def test_small_students_match_independent_unitary(name, n, layers):
    rng = np.random.default_rng(n * 10 + layers)
    student = build_student(name, n, layers)
    w = rng.uniform(-np.pi, np.pi, size=len(student.weight_params))
    ansatz = without_measurements(student.circuit).copy_empty_like()
    for inst in without_measurements(student.circuit).data[n:]:  # drop the n embedding levels
        ansatz.append(inst)
    u = Operator(ansatz.assign_parameters(dict(zip(student.weight_params, w)))).data
    np.testing.assert_allclose(u, ansatz_ref(name, w, n, layers), atol=ATOL)


def q_nd_weights(n, n_d, layers):
    total = 0
    for j in range(layers):
        m = n - min(j, n - n_d)
        total += 2 * m + (1 if m == 2 else m)
    return total


def test_parameter_counts():
    rows = {r["name"]: r for r in architecture_table(devices=())}
    assert tuple(rows) == ARCHITECTURES
    assert rows["q2"]["weights"] == 59 and rows["q2"]["head_params"] == 15
    assert rows["q2"]["total_params"] == 74
    assert rows["hea"]["weights"] == 2 * 6 * 6
    assert rows["universal"]["weights"] == rows["universal_h"]["weights"] == 5 * 18
    for d in (2, 3, 4, 5):
        row = rows[f"q{d}"]
        assert row["weights"] == q_nd_weights(6, d, 5)
        assert row["head_params"] == 2**d * 3 + 3
        assert row["total_params"] == q_nd_weights(6, d, 5) + 2**d * 3 + 3  # by hand
    for name in ("hea", "universal", "universal_h"):
        assert rows[name]["head_params"] == 6 * 3 + 3
    # an independent count: torch's parameters of the student each row describes
    gens = [torch.Generator().manual_seed(0)]
    for name, row in rows.items():
        assert row["total_params"] == count_params(build_model(name, 64, 3, gens)), name


def test_q_nd_measures_qubits_in_order_and_never_touches_them_again():
    student = build_student("q3")
    qc = student.circuit
    assert [c.name for c in qc.cregs] == ["meas"] and qc.num_clbits == 6
    measured = set()
    for inst in qc.data:
        qubits = [qc.find_bit(q).index for q in inst.qubits]
        assert not measured & set(qubits), f"{inst.operation.name} acts on a measured qubit"
        if inst.operation.name == "measure":
            assert qubits == [len(measured)]
            assert [qc.find_bit(c).index for c in inst.clbits] == qubits
            measured.add(qubits[0])
    assert measured == {0, 1, 2}
    assert student.readout_qubits == (3, 4, 5) and student.readout == "probs"
    assert student.n_outputs == 8


def test_student_contract():
    for name in ARCHITECTURES:
        st = build_student(name)
        assert st.circuit.count_ops().get("measure", 0) == (6 - int(name[1:]) if name[0] == "q" else 0)
        assert len(st.input_params) == 63 and st.n_features == 64
        assert set(st.input_params) | set(st.weight_params) == set(st.circuit.parameters)
        mc = st.measured_circuit()
        assert [c.name for c in mc.cregs] == ["meas"] and mc.num_clbits == 6
        assert mc.count_ops()["measure"] == st.circuit.count_ops().get("measure", 0) + len(st.readout_qubits)
        assert st.input_angles(np.ones((2, 64))).shape == (2, 63)
    hea = build_student("hea")
    assert hea.readout == "z" and hea.readout_qubits == tuple(range(6)) and hea.n_outputs == 6
    obs = hea.observables()
    assert [o.paulis[0].to_label() for o in obs] == ["IIIIIZ", "IIIIZI", "IIIZII", "IIZIII", "IZIIII", "ZIIIII"]
    with pytest.raises(ValueError, match="valid: hea, universal, universal_h, q2, q3, q4, q5"):
        build_student("q6")


def test_qpy_round_trip():
    st = build_student("q2", n_qubits=4, layers=3)
    buf = io.BytesIO()
    qpy.dump(st.measured_circuit(), buf)
    buf.seek(0)
    loaded = qpy.load(buf)[0]
    rng = np.random.default_rng(0)
    values = bind(st, rng.normal(size=16), rng.normal(size=len(st.weight_params)))
    by_name = {p.name: v for p, v in values.items()}
    a = Statevector(without_measurements(st.circuit).assign_parameters(values))
    b = Statevector(without_measurements(loaded).assign_parameters({p: by_name[p.name] for p in loaded.parameters}))
    np.testing.assert_allclose(a.data, b.data, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Dynamic q_nd read-out and device transpilation
# ---------------------------------------------------------------------------------------------

SHOTS = 4000


def tv_bound(k_outcomes: int, shots: int = SHOTS, delta: float = 1e-9) -> float:
    """Total-variation bound for an empirical distribution: E[TV] <= sqrt(K/shots)/2
    (Cauchy-Schwarz) plus a McDiarmid tail (one shot moves TV by <= 1/shots), failing w.p. delta.
    Tighter than 5*sqrt(K/shots), so that e.g. a bit-order mix-up of the read-out is caught."""
    return 0.5 * np.sqrt(k_outcomes / shots) + np.sqrt(np.log(1 / delta) / (2 * shots))


def exact_readout(student, values):
    """Read-out distribution from the unitary part: partial trace over the measured qubits."""
    psi = Statevector(without_measurements(student.circuit).assign_parameters(values))
    dropped = [q for q in range(student.n_qubits) if q not in student.readout_qubits]
    return partial_trace(psi, dropped).probabilities() if dropped else psi.probabilities()


def sampled_readout(student, circuit, seed):
    sim = AerSimulator(seed_simulator=seed)
    counts = sim.run(transpile(circuit, sim), shots=SHOTS).result().get_counts()
    return readout_distribution(student, counts)


def compact(tc: QuantumCircuit) -> tuple[QuantumCircuit, dict[int, int]]:
    """Drop idle physical qubits of a transpiled circuit; returns it and physical -> new index."""
    used = sorted({tc.find_bit(q).index for inst in tc.data for q in inst.qubits})
    pos = {p: i for i, p in enumerate(used)}
    out = QuantumCircuit(len(used), global_phase=tc.global_phase)
    for creg in tc.cregs:
        out.add_register(creg)
    for inst in tc.data:
        out.append(inst.operation, [pos[tc.find_bit(q).index] for q in inst.qubits], inst.clbits)
    return out, pos


def test_isa_circuits_keep_semantics_on_fake_sherbrooke():
    target = fake_device("fake_sherbrooke").target
    pm = preset_pass_manager("fake_sherbrooke", seed_transpiler=TRANSPILE_SEED)
    rng = np.random.default_rng(11)
    for name in ARCHITECTURES:
        st = build_student(name)
        isa = pm.run(st.measured_circuit())
        for inst in isa.data:
            qargs = tuple(isa.find_bit(q).index for q in inst.qubits)
            assert target.instruction_supported(inst.operation.name, qargs), (name, inst.operation.name)
        values = bind(st, rng.normal(size=64), rng.uniform(-np.pi, np.pi, size=len(st.weight_params)))
        assert set(isa.parameters) == set(values)
        small, pos = compact(isa.assign_parameters(values))
        if st.readout == "z":
            got = Statevector(small.remove_final_measurements(inplace=False))
            logical = QuantumCircuit(small.num_qubits)
            final = isa.layout.final_index_layout()
            logical.compose(st.circuit.assign_parameters(values), [pos[final[q]] for q in range(6)], inplace=True)
            assert state_fidelity(got, Statevector(logical)) > 1 - 1e-9, name
        else:
            exact = exact_readout(st, values)
            tv = 0.5 * np.abs(sampled_readout(st, small, seed=5) - exact).sum()
            assert tv < tv_bound(len(exact)), (name, tv)


@pytest.mark.parametrize("name", ["q2", "q3", "q4", "q5"])
def test_dynamic_readout_matches_reduced_state(name):
    st = build_student(name)
    rng = np.random.default_rng(int(name[1]))
    values = bind(st, rng.normal(size=64), rng.uniform(-np.pi, np.pi, size=len(st.weight_params)))
    exact = exact_readout(st, values)
    sampled = sampled_readout(st, st.measured_circuit().assign_parameters(values), seed=17)
    assert sampled.shape == (2 ** int(name[1]),)
    tv = 0.5 * np.abs(sampled - exact).sum()
    assert tv < tv_bound(len(exact)), tv


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def test_architecture_table_with_devices_and_drawing(tmp_path):
    rows = architecture_table(devices=("fake_sherbrooke", "fake_torino"), names=("q2", "hea"))
    keys = {"name", "qubits", "layers", "weights", "idle_weights", "head_params", "total_params",
            "effective_params", "depth", "two_qubit_gates", "depth_fake_sherbrooke", "two_qubit_gates_fake_sherbrooke", "depth_fake_torino",
            "two_qubit_gates_fake_torino"}
    for row in rows:
        assert set(row) == keys
        assert row["two_qubit_gates_fake_torino"] >= row["two_qubit_gates"] > 0
    assert rows[0]["total_params"] == 74
    assert "mux_ry" in draw_student("q2", n_qubits=3, layers=1).lower()
    out = draw_student("q2", out_path=str(tmp_path / "q2.png"), n_qubits=3, layers=1)
    assert (tmp_path / "q2.png").stat().st_size > 1000 and out.endswith("q2.png")
