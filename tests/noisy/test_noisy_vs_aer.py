"""Noise-aware simulation against Aer's own density-matrix simulation (the oracle), float64.

Profiles are small temporary ``aer`` profiles (FakeManila's device noise model: depolarising and
thermal-relaxation gate errors, read-out errors; one transpiler trial) so the tests stay fast; a
hand-made noise model file covers all-qubit errors overridden by local ones.
"""

import numpy as np
import pytest
import torch
from qiskit.quantum_info import DensityMatrix, Pauli
from qiskit_aer import AerSimulator
from qiskit_aer.noise import (
    NoiseModel,
    ReadoutError,
    depolarizing_error,
    thermal_relaxation_error,
)

from qkd_qiskit.backends import get_backend, probs_to_readouts, save_noise_model
from qkd_qiskit.circuits import build_student
from qkd_qiskit.models import NoisyStudent
from qkd_qiskit.noisy import NoisySimulator, barrier_student


@pytest.fixture(scope="module")
def manila(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "manila.yaml"
    path.write_text("kind: aer\ndevice: fake_manila\nshots: 1024\n")
    return get_backend(str(path))


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """All-qubit thermal relaxation on sx/x (a local depolarising error overrides it on qubit 1),
    depolarising cz, asymmetric read-out errors."""
    nm = NoiseModel(basis_gates=["rz", "sx", "x", "cz"])
    nm.add_all_qubit_quantum_error(thermal_relaxation_error(50e3, 40e3, 300), ["sx", "x"])
    nm.add_quantum_error(depolarizing_error(0.05, 1), ["sx"], [1])
    nm.add_all_qubit_quantum_error(depolarizing_error(0.03, 2), ["cz"])
    for q, (p01, p10) in enumerate([(0.02, 0.05), (0.04, 0.01), (0.03, 0.03)]):
        nm.add_readout_error(ReadoutError([[1 - p01, p01], [p10, 1 - p10]]), [q])
    folder = tmp_path_factory.mktemp("custom")
    save_noise_model(nm, folder / "nm.json")
    (folder / "custom.yaml").write_text(f"kind: aer\nnoise_model: {folder / 'nm.json'}\n")
    return get_backend(str(folder / "custom.yaml"))


def _case(backend, name, n_qubits, layers, seed=0, n=4):
    st = barrier_student(build_student(name, n_qubits=n_qubits, layers=layers, n_features=2**n_qubits))
    rng = np.random.default_rng(seed)
    angles = np.asarray(st.input_angles(rng.random((n, 2**n_qubits))))
    return st, NoisySimulator(st, backend, torch.float64), angles, rng.uniform(0, 2 * np.pi, len(st.weight_params))


@pytest.mark.parametrize("name,n_qubits,layers", [("hea", 3, 2), ("q2", 4, 2)])  # q2: mid-circuit measurements
def test_readouts_match_aer_density_matrix(manila, name, n_qubits, layers):
    st, sim, angles, w = _case(manila, name, n_qubits, layers)
    ours = sim.readouts(torch.as_tensor(sim.states(angles))[None], torch.as_tensor(w)[None])[0].numpy()
    # Aer: density matrix of the same compact ISA circuit with the restricted noise model, read-out errors applied
    oracle = probs_to_readouts(st, manila.compacted(st).probabilities(st, w, angles))
    assert np.abs(ours - oracle).max() < 1e-6


def test_custom_noise_model_all_qubit_and_local_errors(custom):
    st, sim, angles, w = _case(custom, "hea", 3, 2, seed=3)
    assert not np.allclose(sim.errors.ptm("sx", (1,)), sim.errors.ptm("sx", (0,)))  # the override is in play
    ours = sim.readouts(torch.as_tensor(sim.states(angles))[None], torch.as_tensor(w)[None])[0].numpy()
    oracle = probs_to_readouts(st, custom.compacted(st).probabilities(st, w, angles))
    assert np.abs(ours - oracle).max() < 1e-6


def test_embedded_states_match_aer_density_matrix(manila):
    st, sim, angles, _ = _case(manila, "q2", 4, 2, seed=1, n=3)
    qc = sim.input_part.copy()
    qc.save_density_matrix(label="rho")
    sim_aer = AerSimulator(method="density_matrix", noise_model=sim.noise_model)
    binds = {p: angles[:, j] for j, p in enumerate(st.input_params) if p in set(qc.parameters)}
    result = sim_aer.run(qc, parameter_binds=[binds], shots=1).result()
    ours = sim.states(angles)
    k = qc.num_qubits
    for i in range(len(angles)):
        rho = DensityMatrix(result.data(i)["rho"])
        for index in (0, 3, 12, 15, 48, 63, 77, 4**k - 1, 1 + 4 * 2 + 16 * 3):  # a few Pauli strings
            label = "".join("IXYZ"[(index >> (2 * q)) & 3] for q in reversed(range(k)))
            assert abs(rho.expectation_value(Pauli(label)).real - ours[i, index]) < 1e-9


def test_student_logits_are_the_head_of_aer_readouts(manila):
    """NoisyStudent folds its linear head into the observables; the logits still equal head(Aer read-outs)."""
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    net = NoisyStudent(build_student("hea", n_qubits=3, layers=2), 3, gens, torch.float64, noise=manila)
    x = torch.as_tensor(np.random.default_rng(2).random((4, 8)))
    logits = net(x.unsqueeze(0).expand(2, -1, -1)).detach()
    st = net.student
    cmp = manila.compacted(st)
    for m in range(2):
        w = net.quantum.weights[m].detach().numpy()
        r = probs_to_readouts(st, cmp.probabilities(st, w, np.asarray(st.input_angles(x.numpy()))))
        ref = net.head.layers[0].bias[m] + torch.as_tensor(r) @ net.head.layers[0].weight[m]
        assert torch.allclose(logits[m], ref.detach(), atol=1e-6)


def test_gradient_matches_finite_differences(manila):
    _, sim, angles, w = _case(manila, "q2", 4, 2, seed=5, n=2)
    states = torch.as_tensor(sim.states(angles))[None]
    f = lambda weights: sim.readouts(states, weights)
    assert torch.autograd.gradcheck(f, (torch.as_tensor(w)[None].requires_grad_(True),), eps=1e-6, atol=1e-7)
    # the head folded into the observables: circuit weights and head weights both
    head_w, head_b = torch.randn(1, 4, 3, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    g = lambda weights, hw: sim.linear(states, weights, hw, head_b)
    assert torch.autograd.gradcheck(g, (torch.as_tensor(w)[None].requires_grad_(True), head_w.requires_grad_(True)),
                                    eps=1e-6, atol=1e-7)
