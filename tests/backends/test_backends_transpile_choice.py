"""Depth-aware transpilation: the estimated success probability and the choice among trials."""

import math

from qiskit import QuantumCircuit

from qkd_qiskit.backends import get_backend, load_profile
from qkd_qiskit.backends.devices import fake_device, preset_pass_manager
from qkd_qiskit.backends.transpile import best_transpile, estimated_success
from qkd_qiskit.circuits import build_student


def test_estimated_success_is_the_product_of_calibrated_fidelities():
    target = fake_device("fake_manila").target
    qc = QuantumCircuit(5, 1)
    qc.sx(0)
    qc.cx(0, 1)
    qc.rz(0.3, 1)
    qc.measure(1, 0)
    by_hand = ((1 - target["sx"][(0,)].error) * (1 - target["cx"][(0, 1)].error)
               * (1 - target["measure"][(1,)].error))  # rz is virtual: no error
    assert math.isclose(estimated_success(qc, target), by_hand, rel_tol=1e-12)


def test_best_transpile_keeps_the_trial_with_the_highest_estimate():
    device = fake_device("fake_sherbrooke")
    circuit = build_student("hea", n_qubits=3, layers=2).measured_circuit()
    trials = [({"optimization_level": lvl, "seed_transpiler": s}, preset_pass_manager(device, None, lvl, s))
              for lvl in (1, 3) for s in (0, 1, 2)]
    chosen = best_transpile(circuit, trials, device.target)
    every = [estimated_success(pm.run(circuit), device.target) for _, pm in trials]
    assert chosen.choice["estimated_success"] == max(every) and chosen.choice["trials"] == 6
    best = trials[every.index(max(every))][0]
    assert {k: chosen.choice[k] for k in best} == best


def test_profile_trials_reach_the_backend_stats():
    profile = load_profile("aer-fake-sherbrooke").model_copy(
        update={"optimization_levels": [1, 3], "transpile_trials": 2, "name": "trials"})
    stats = get_backend(profile).transpiled(build_student("hea", n_qubits=3, layers=1)).stats()
    assert stats["trials"] == 4 and stats["optimization_level"] in (1, 3) and 0 < stats["estimated_success"] < 1


def test_qnns_get_a_circuit_that_keeps_every_weight():
    """Level 3 drops hea's last RZ layer (diagonal before measurement): fine for read-outs, but a QNN
    needs every weight, so ``keep_parameters`` only chooses among trials that keep them."""
    device = fake_device("fake_sherbrooke")
    circuit = build_student("hea", n_qubits=3, layers=1).measured_circuit()
    trials = [({"optimization_level": 3, "seed_transpiler": 0}, preset_pass_manager(device, None, 3, 0)),
              ({"optimization_level": 1, "seed_transpiler": 0}, preset_pass_manager(device, None, 1, 0))]
    assert not set(circuit.parameters) <= set(trials[0][1].run(circuit).parameters)  # what level 3 does
    kept = best_transpile(circuit, trials, device.target, keep_parameters=True)
    assert set(circuit.parameters) <= set(kept.circuit.parameters) and kept.choice["optimization_level"] == 1
