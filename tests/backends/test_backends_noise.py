"""Noise models through Aer's public API: restriction to active qubits, read-out queries, JSON files.

Oracles: the parent model's own ``to_dict(serializable=True)`` records (what Aer's simulator
reads), and Aer's own truncation of idle qubits when the full-width circuit runs with the full model.
"""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

from qkd_qiskit.backends import (
    AerBackend,
    Compacted,
    RestrictedNoiseModel,
    apply_readout_errors,
    bindings,
    device_noise_model,
    get_backend,
    load_noise_model,
    load_profile,
    measurement_noise_is_classical,
    noise_errors,
    readout_matrix,
    restrict_noise_model,
    save_noise_model,
)
from qkd_qiskit.circuits import build_student

MANILA_KEEP = [4, 3, 1]  # compact qubit i is physical MANILA_KEEP[i]


def test_restricted_model_serialises_the_parents_records_exactly():
    parent = device_noise_model("fake_manila")
    pos = {p: i for i, p in enumerate(MANILA_KEEP)}
    expected = []
    for rec in parent.to_dict(serializable=True)["errors"]:
        qubits = rec.get("gate_qubits")
        if qubits is None:
            expected.append(rec)
        elif set(qubits[0]) <= pos.keys():
            expected.append({**rec, "gate_qubits": [[pos[q] for q in qubits[0]]]})
    nm = restrict_noise_model(parent, MANILA_KEEP)
    assert isinstance(nm, RestrictedNoiseModel) and nm.to_dict(serializable=True) == {"errors": expected}
    assert nm.basis_gates == parent.basis_gates and nm.noise_qubits == [0, 1, 2]
    assert nm.noise_instructions == parent.noise_instructions
    assert 0 < len(expected) < len(parent.to_dict()["errors"])


def test_restricted_model_edited_later_serialises_its_tables():
    nm = restrict_noise_model(device_noise_model("fake_manila"), [0, 1])
    nm.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), "h")
    serial = nm.to_dict(serializable=True)["errors"]
    assert nm.records is None and any(rec["operations"] == ["h"] for rec in serial)
    assert len(serial) == len(restrict_noise_model(device_noise_model("fake_manila"), [0, 1]).records) + 1


@pytest.mark.parametrize("name", ["q2", "hea"])
def test_compact_run_equals_aers_own_idle_qubit_truncation(name, small_batch):
    """The restricted model on the compact circuit gives Aer's numbers for the full-width circuit
    with the full device model (Aer drops idle qubits itself, much more slowly)."""
    st = build_student(name, n_qubits=3, layers=2)
    w, a = small_batch(st, n=4)
    be = get_backend(load_profile("aer-fake-torino"))
    cmp = be.compacted(st)
    compact = cmp.probabilities(st, w, a)
    isa = be.transpiled(st).circuit
    full = QuantumCircuit(*isa.qregs, *isa.cregs)
    for inst in isa.data:
        if inst.operation.name not in ("measure", "barrier", "delay"):
            full.append(inst)
    positions = cmp.readout_positions(st)
    full.save_probabilities([cmp.physical[i] for i in positions], label="p")
    sim = AerSimulator(method="density_matrix", noise_model=be.noise_model, fusion_threshold=1)
    binds = {p: v for ps, vals in bindings(full, st, w, a).items() for p, v in zip(ps, vals.T)}
    result = sim.run(full, parameter_binds=[binds], shots=1).result()
    exact = np.array([result.data(i)["p"] for i in range(len(a))])
    matrices = [readout_matrix(be.noise_model, cmp.physical[i]) for i in positions]
    assert np.allclose(compact, apply_readout_errors(exact, matrices), atol=1e-12, rtol=0)


def test_readout_matrix_is_the_assignment_matrix():
    nm = NoiseModel()
    nm.add_readout_error(ReadoutError([[0.9, 0.1], [0.3, 0.7]]), [1])
    assert np.array_equal(readout_matrix(nm, 1), [[0.9, 0.3], [0.1, 0.7]])  # P[measured, true]
    assert np.array_equal(readout_matrix(nm, 0), np.eye(2))
    nm.add_all_qubit_readout_error(ReadoutError([[0.8, 0.2], [0.2, 0.8]]))
    assert np.array_equal(readout_matrix(nm, 0), [[0.8, 0.2], [0.2, 0.8]])
    assert np.array_equal(readout_matrix(nm, 1), [[0.9, 0.3], [0.1, 0.7]])  # local wins


def test_measurement_noise_is_classical_only_for_single_qubit_readout_errors():
    assert measurement_noise_is_classical(device_noise_model("fake_manila"))
    quantum = NoiseModel()
    quantum.add_quantum_error(depolarizing_error(0.1, 1), "measure", [0])
    assert not measurement_noise_is_classical(quantum)
    correlated = NoiseModel()
    correlated.add_readout_error(ReadoutError(np.full((4, 4), 0.25)), [0, 1])
    assert not measurement_noise_is_classical(correlated)


def test_noise_errors_are_the_to_dict_records():
    nm = device_noise_model("fake_manila")
    assert noise_errors(nm) == nm.to_dict()["errors"]
    small = restrict_noise_model(nm, [0])
    assert noise_errors(small) is small.records and small.to_dict()["errors"] == small.records


def test_saved_noise_model_profile(tmp_path, small_batch):
    path = save_noise_model(device_noise_model("fake_manila"), tmp_path / "manila.json")
    (tmp_path / "p.yaml").write_text("kind: aer\nnoise_model: manila.json\nshots: 256\n")
    be = get_backend(tmp_path / "p.yaml")
    assert isinstance(be, AerBackend) and not be.relaxes_delays
    assert be.profile.noise_model == str(path.resolve()) and be.num_qubits == 5
    assert be.noise_model is load_noise_model(str(path.resolve()))
    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=4)
    out = be.readouts(st, w, a)
    assert out.shape == (4, 4) and np.allclose(out.sum(1), 1)
    # the file holds the device's errors: the same exact probabilities on the device's ISA circuit
    device = get_backend(load_profile("aer-fake-torino").model_copy(update={"device": "fake_manila"}))
    from_file = Compacted.build(device.transpiled(st), be.noise_model)
    assert np.allclose(from_file.probabilities(st, w, a), device.compacted(st).probabilities(st, w, a),
                       atol=1e-12, rtol=0)
