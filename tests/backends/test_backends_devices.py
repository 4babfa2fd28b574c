"""Devices: fake snapshot lookup, the cached preset pass manager, idle relaxation of device noise
models, and IBM credentials (looked up through public qiskit-ibm-runtime API only)."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import QiskitRuntimeService
from qiskit_ibm_runtime.fake_provider import FakeKingston, FakeManilaV2

from qkd_qiskit.backends import (
    Compacted,
    ProfileError,
    Transpiled,
    device_noise_model,
    device_relaxes_delays,
    fake_device,
    fake_device_names,
    has_ibm_credentials,
    load_noise_model,
    prepare_backend,
    preset_pass_manager,
    redact,
    save_noise_model,
)
from qkd_qiskit.circuits import build_student


def test_fake_devices_come_from_the_provider():
    names = fake_device_names()
    assert {"fake_kingston", "fake_torino", "fake_sherbrooke", "fake_manila"} <= set(names)
    assert all(n.startswith("fake_") for n in names)
    assert type(fake_device("fake_kingston")) is FakeKingston and fake_device("fake_kingston").num_qubits == 156
    assert type(fake_device("fake_manila")) is FakeManilaV2
    assert fake_device("fake_torino") is fake_device("fake_torino")  # one snapshot per name


@pytest.mark.parametrize("name", ["fake_nowhere", "sherbrooke", "FakeSherbrooke", ""])
def test_unknown_fake_device_lists_examples(name):
    with pytest.raises(ValueError) as info:
        fake_device(name)
    assert str(info.value) == (f"unknown fake device {name!r} (e.g. fake_sherbrooke, fake_torino, fake_manila; "
                               "see qiskit_ibm_runtime.fake_provider)")


def test_preset_pass_manager_is_cached_and_is_qiskits():
    st = build_student("q2", n_qubits=4, layers=2)
    qc = st.measured_circuit()
    pm = preset_pass_manager("fake_torino", optimization_level=1, seed_transpiler=1234)
    assert pm is preset_pass_manager(fake_device("fake_torino"), None, 1, 1234)
    fresh = generate_preset_pass_manager(optimization_level=1, backend=FakeManilaV2(), seed_transpiler=7)
    assert preset_pass_manager("fake_manila", seed_transpiler=7).run(qc) == fresh.run(qc)
    basis = ["cx", "rz", "sx", "x"]
    fresh = generate_preset_pass_manager(optimization_level=2, basis_gates=basis, seed_transpiler=3)
    assert preset_pass_manager(basis_gates=basis, optimization_level=2, seed_transpiler=3).run(qc) == fresh.run(qc)
    first, again = pm.run(qc), pm.run(qc)
    assert first == again and set(first.count_ops()) <= {"cz", "rz", "sx", "x", "measure", "barrier"}


def _excited_after_delay(noise_model, delay_us):
    """P(read 1) after X and an idle ``delay_us`` on qubit 0 of fake_manila (Aer, exact)."""
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit(1)
    qc.x(0)
    if delay_us:
        qc.delay(delay_us, 0, unit="us")
    qc.save_probabilities([0])
    sim = AerSimulator(method="density_matrix", noise_model=noise_model)
    return sim.run(qc, shots=1).result().data(0)["probabilities"][1]


def test_device_noise_relaxes_delays_and_json_models_do_not(tmp_path):
    """Oracle: Aer itself. A device model decays during a delay; a JSON model does not (its
    relaxation pass is not serialised), so only the former may not take the fast path."""
    device = device_noise_model("fake_manila")
    assert device_relaxes_delays("fake_manila")
    assert _excited_after_delay(device, 200) < _excited_after_delay(device, 0) - 0.2
    saved = load_noise_model(str(save_noise_model(device, tmp_path / "manila.json")))
    assert _excited_after_delay(saved, 200) == pytest.approx(_excited_after_delay(saved, 0), abs=1e-12)
    isa = QuantumCircuit(5, 1)
    isa.x(2)
    isa.delay(100, 2)
    isa.measure(2, 0)
    t = Transpiled(isa, (0,), (0,))
    assert not Compacted.build(t, device, relaxes_delays=True).fast_path_ok
    assert Compacted.build(t, saved, relaxes_delays=False).fast_path_ok


@pytest.fixture
def account_file(monkeypatch, tmp_path):
    """Saved accounts read from a fresh file (public ``saved_accounts(filename=...)``), no env credentials."""
    path = tmp_path / "qiskit-ibm.json"
    real = QiskitRuntimeService.saved_accounts
    monkeypatch.setattr(QiskitRuntimeService, "saved_accounts",
                        staticmethod(lambda **kw: real(filename=str(path), **kw)))
    for var in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_INSTANCE"):
        monkeypatch.delenv(var, raising=False)
    return path


CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::"


@pytest.mark.parametrize("account, env_channel, found", [
    (None, None, False),
    ({"channel": "ibm_quantum_platform", "name": "mine"}, None, True),
    ({"channel": "ibm_cloud", "name": "mine", "set_as_default": True}, None, True),
    ({"channel": "ibm_cloud", "name": "mine"}, "ibm_cloud", True),
    ({"channel": "ibm_cloud", "name": "mine"}, "ibm_quantum_platform", False),  # the service would not pick it
    ({"channel": "ibm_cloud"}, "ibm_quantum_platform", True),  # saved under a default name
])
def test_saved_accounts_count_as_credentials(account_file, monkeypatch, account, env_channel, found):
    if account is not None:
        QiskitRuntimeService.save_account(token="abc", instance=CRN, filename=str(account_file), **account)
    if env_channel:
        monkeypatch.setenv("QISKIT_IBM_CHANNEL", env_channel)
    assert has_ibm_credentials() is found
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "tok")
    assert has_ibm_credentials()


def test_real_device_without_credentials(account_file):
    with pytest.raises(ProfileError) as info:
        prepare_backend("ibm-example", [build_student("q2")])
    assert "no IBM Quantum credentials" in str(info.value) and "\n" not in str(info.value)
    assert prepare_backend("ibm-local-fake-sherbrooke", [build_student("q2")]).local  # no account needed


def test_redact(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "tok-123-secret")
    assert redact("bad token tok-123-secret!") == "bad token ***!"
    monkeypatch.delenv("QISKIT_IBM_TOKEN")
    assert redact("bad token tok-123-secret!") == "bad token tok-123-secret!"


def test_device_noise_model_is_the_devices():
    nm = device_noise_model("fake_manila")
    assert nm is device_noise_model("fake_manila") and nm.noise_qubits == list(range(5))
    assert {"cx", "sx", "x", "measure"} <= set(nm.noise_instructions)
    assert np.isfinite(fake_device("fake_manila").target.qubit_properties[0].t1)
