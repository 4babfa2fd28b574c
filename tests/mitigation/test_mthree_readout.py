"""mthree read-out mitigation on the Aer path (``mitigation: mthree``), against Qiskit Statevector."""

import numpy as np
import pytest
from qiskit.quantum_info import Statevector
from qiskit_aer.noise import NoiseModel, ReadoutError

from qkd_qiskit.backends import get_backend, load_profile, save_noise_model
from qkd_qiskit.backends.mitigation import mitigate_frequencies
from qkd_qiskit.circuits import build_student, without_measurements
from qkd_qiskit.readout import probs_to_readouts

FLIPS = {0: [[0.9, 0.1], [0.2, 0.8]], 1: [[0.95, 0.05], [0.1, 0.9]], 2: [[0.85, 0.15], [0.05, 0.95]]}


def _exact_probs(student, w, a):
    """Read-out distribution from Qiskit Statevector (deferred measurement: measurements dropped)."""
    circuit = without_measurements(student.circuit) if student.circuit.num_clbits else student.circuit
    params = list(student.input_params) + list(student.weight_params)
    rows = []
    for angles in a:
        bound = circuit.assign_parameters(dict(zip(params, [*angles, *w])))
        rows.append(Statevector(bound).probabilities(list(student.readout_qubits)))
    return np.array(rows)


@pytest.fixture(scope="module")
def readout_only_profiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ro")
    nm = NoiseModel(basis_gates=["rz", "sx", "x", "cx"])
    for q, p in FLIPS.items():
        nm.add_readout_error(ReadoutError(p), [q])
    save_noise_model(nm, folder / "ro.json")
    out = {}
    for mit in ("none", "mthree"):
        (folder / f"{mit}.yaml").write_text(f"kind: aer\nnoise_model: ro.json\nshots: 400000\nmitigation: {mit}\n")
        out[mit] = get_backend(folder / f"{mit}.yaml")
    return out


@pytest.mark.parametrize("arch", ["hea", "q2"])
def test_mthree_undoes_readout_errors(readout_only_profiles, small_batch, arch):
    st = build_student(arch, n_qubits=3, layers=2)
    w, a = small_batch(st, n=4)
    exact = probs_to_readouts(st.readout, _exact_probs(st, w, a))
    raw = readout_only_profiles["none"].readouts(st, w, a)
    mitigated = readout_only_profiles["mthree"].readouts(st, w, a)
    assert np.abs(raw - exact).max() > 0.03           # the read-out errors are visible ...
    assert np.abs(mitigated - exact).max() < 0.01     # ... and mthree removes them (shot noise ~1e-3)


def test_mitigation_inverts_the_assignment_matrices_by_hand():
    rng = np.random.default_rng(0)
    true = rng.dirichlet(np.ones(8), size=3)
    mats = [np.array(FLIPS[q]).T for q in range(3)]  # P[measured, true]
    full = np.kron(mats[2], np.kron(mats[1], mats[0]))  # bit j of the index is qubit j
    measured = true @ full.T
    assert np.allclose(mitigate_frequencies(measured, 10**7, mats), true, atol=2e-5)


def test_mitigation_field_is_checked(tmp_path):
    from qkd_qiskit.backends import ProfileError

    assert load_profile("aer-fake-kingston").mitigation == "none"
    (tmp_path / "bad.yaml").write_text("kind: aer\ndevice: fake_kingston\nmitigation: zne\n")
    with pytest.raises(ProfileError, match="mitigation") as err:
        load_profile(tmp_path / "bad.yaml")
    assert len(str(err.value).splitlines()) == 1
