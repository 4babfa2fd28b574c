"""Backend profiles (validation, one-line errors) and the execution paths (exact, Aer fast, Aer sampler)."""

import numpy as np
import pytest

from qkd_qiskit.backends import (AerProfile, Compacted, IBMProfile, PROFILE_DIR, ProfileError, apply_readout_errors,
                                 bindings, bits_to_probs, device_noise_model, get_backend, load_profile,
                                 parse_profile, prepare_backend, probs_to_readouts, redact, save_noise_model)
from qkd_qiskit.circuits import build_student

SHIPPED = ["statevector", "aer-fake-sherbrooke", "aer-fake-torino", "ibm-local-fake-sherbrooke", "ibm-example"]


def small_batch(student, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, student.n_features)).astype(float) + 0.05
    return rng.uniform(0, 2 * np.pi, len(student.weight_params)), np.asarray(student.input_angles(x))


def profile_error(raw) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(raw, "p.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("p.yaml: ")
    return msg


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name):
    p = load_profile(name)
    assert p.name == name and (PROFILE_DIR / f"{name}.yaml").is_file()


def test_profile_kinds_and_defaults():
    assert load_profile(None).kind == "statevector"
    aer = load_profile("aer-fake-sherbrooke")
    assert isinstance(aer, AerProfile) and aer.fast_eval and aer.shots == 1024
    local, real = load_profile("ibm-local-fake-sherbrooke"), load_profile("ibm-example")
    assert isinstance(local, IBMProfile) and local.local and not real.local and real.mode == "batch"
    opts = real.primitive_options("estimator")
    assert opts["resilience_level"] == 1 and opts["dynamical_decoupling"]["sequence_type"] == "XY4"
    assert "resilience_level" not in real.primitive_options("sampler")


@pytest.mark.parametrize("raw, expected", [
    ({"kind": "aer", "device": "fake_nowhere"}, "device: unknown fake device 'fake_nowhere'"),
    ({"kind": "aer", "device": "fake_manila", "shots": 0}, "shots: Input should be greater than 0"),
    ({"kind": "ibm", "device": "fake_manila", "shots": -5}, "shots: Input should be greater than 0"),
    ({"kind": "ibm", "device": "torino"}, "device: 'torino' is neither a fake_* snapshot"),
    ({"kind": "aer", "device": "fake_manila", "shot": 10}, "shot: unknown key"),
    ({"kind": "ibm", "device": "ibm_torino", "token": "abc"}, "token: unknown key (credentials never go"),
    ({"kind": "aer"}, "needs a device"),
    ({"kind": "gpu"}, "kind: must be one of statevector, aer, ibm"),
    ({"device": "fake_manila"}, "kind: missing"),
    ({"kind": "aer", "noise_model": "missing.json"}, "noise_model: no such file"),
    ({"kind": "ibm", "device": "ibm_torino", "mode": "fast"}, "mode: Input should be 'batch', 'session' or 'job'"),
])
def test_profile_validation_is_one_line(raw, expected):
    assert expected in profile_error(raw)


def test_unknown_profile_name_lists_shipped():
    with pytest.raises(ProfileError, match="no profile 'nope'.*aer-fake-sherbrooke"):
        load_profile("nope")


def test_student_wider_than_device_fails_before_running():
    with pytest.raises(ProfileError, match="fake_manila has 5 qubits, the hea student needs 6"):
        prepare_backend(parse_profile({"kind": "aer", "device": "fake_manila"}), [build_student("hea")])
    with pytest.raises(ProfileError, match="fake_manila has 5 qubits"):
        prepare_backend(parse_profile({"kind": "ibm", "device": "fake_manila"}), [build_student("q2")])


def test_real_device_without_credentials(monkeypatch, tmp_path):
    import qiskit_ibm_runtime.accounts.management as management

    for var in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_INSTANCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / "none.json"))
    with pytest.raises(ProfileError) as info:
        prepare_backend("ibm-example", [build_student("q2")])
    assert "no IBM Quantum credentials" in str(info.value) and "\n" not in str(info.value)


def test_redact(monkeypatch):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "tok-123-secret")
    assert redact("bad token tok-123-secret!") == "bad token ***!"


def test_readout_error_application():
    probs = np.array([[0.5, 0.25, 0.25, 0.0]])
    assert np.allclose(apply_readout_errors(probs, [np.eye(2), np.eye(2)]), probs)
    flip0 = np.array([[0.0, 1.0], [1.0, 0.0]])  # bit 0 always flipped
    assert np.allclose(apply_readout_errors(probs, [flip0, np.eye(2)]), [[0.25, 0.5, 0.0, 0.25]])


@pytest.mark.parametrize("name", ["q2", "hea"])
def test_noiseless_paths_match_engine_exactly(name):
    """Bit ordering, layout and read-out mapping of the ISA paths agree with the engine."""
    from qiskit_aer.noise import NoiseModel

    st = build_student(name, n_qubits=4, layers=2)
    w, a = small_batch(st)
    exact = get_backend("statevector").readouts(st, w, a)
    t = get_backend("aer-fake-torino").transpiled(st)
    dm = Compacted.build(t, NoiseModel()).probabilities(st, w, a)
    assert np.allclose(probs_to_readouts(st, dm), exact, atol=1e-9)


def test_fast_path_matches_aer_sampler_within_shot_noise():
    st = build_student("q2", n_qubits=4, layers=2)
    w, a = small_batch(st, n=20)
    be = get_backend(load_profile("aer-fake-sherbrooke").model_copy(update={"shots": 4000}))
    exact_probs = be.compacted(st).probabilities(st, w, a)
    sampled = be.sampler_probs(st, w, a, seed=3)
    z = (sampled - exact_probs) / np.sqrt(exact_probs * (1 - exact_probs) / 4000 + 1e-12)
    assert 0.5 < float((z**2).mean()) < 1.6 and np.abs(z).max() < 5


@pytest.mark.parametrize("profile", ["aer-fake-sherbrooke", "aer-fake-torino"])
def test_noisy_readouts_differ_from_exact_within_bounds(profile):
    st = build_student("hea", n_qubits=3, layers=2)
    w, a = small_batch(st)
    exact = get_backend("statevector").readouts(st, w, a)
    noisy = get_backend(profile).readouts(st, w, a)
    err = np.abs(noisy - exact).mean()
    assert np.isfinite(noisy).all() and 0 < err < 0.3


def test_plain_sampler_path_is_available():
    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=3)
    be = get_backend(load_profile("aer-fake-torino").model_copy(update={"fast_eval": False, "shots": 200}))
    out = be.readouts(st, w, a, seed=1)
    assert out.shape == (3, 4) and np.allclose(out.sum(1), 1)


def test_saved_noise_model_profile(tmp_path):
    path = save_noise_model(device_noise_model("fake_manila"), tmp_path / "manila.json")
    (tmp_path / "p.yaml").write_text("kind: aer\nnoise_model: manila.json\nshots: 256\n")
    be = get_backend(tmp_path / "p.yaml")
    assert be.profile.noise_model == str(path.resolve()) and be.num_qubits == 5
    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=4)
    out = be.readouts(st, w, a)
    assert out.shape == (4, 4) and np.allclose(out.sum(1), 1)
    with pytest.raises(ProfileError, match="has 5 qubits"):
        be.check_fits(build_student("hea"))


def test_bindings_and_bits_helpers():
    from qiskit_aer.primitives import SamplerV2

    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=2)
    qc = st.measured_circuit().decompose(gates_to_decompose=["mux_ry"])
    b = bindings(qc, st, w, a)
    (params, values), = b.items()
    assert values.shape == (2, len(params)) == (2, qc.num_parameters)
    res = SamplerV2(default_shots=20000, seed=1).run([(qc, b)]).result()
    probs = bits_to_probs(st, res[0].data.meas)
    assert np.allclose(probs, get_backend("statevector").readouts(st, w, a), atol=0.02)
