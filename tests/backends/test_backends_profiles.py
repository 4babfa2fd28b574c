"""Backend profiles: the shipped files, defaults, one-line validation errors, and width checks."""

from pathlib import Path

import pytest

from qkd_qiskit.backends import (
    PROFILE_DIR,
    AerBackend,
    AerProfile,
    IBMProfile,
    IBMRuntimeBackend,
    ProfileError,
    StatevectorBackend,
    get_backend,
    load_profile,
    parse_profile,
    prepare_backend,
)
from qkd_qiskit.circuits import build_student

SHIPPED = ["statevector", "aer-fake-kingston", "aer-fake-boston", "aer-fake-nighthawk", "aer-fake-sherbrooke",
           "aer-fake-torino", "ibm-local-fake-kingston", "ibm-local-fake-sherbrooke", "ibm-example"]


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
    assert PROFILE_DIR == Path(__file__).resolve().parents[2] / "backends"  # the repository's folder


def test_profile_kinds_and_defaults():
    assert load_profile(None).kind == "statevector"
    aer = load_profile("aer-fake-sherbrooke")
    assert isinstance(aer, AerProfile) and aer.fast_eval and aer.shots == 1024
    local, real = load_profile("ibm-local-fake-sherbrooke"), load_profile("ibm-example")
    assert isinstance(local, IBMProfile) and local.local and not real.local and real.mode == "batch"
    opts = real.primitive_options("estimator")
    assert opts["resilience_level"] == 1 and opts["dynamical_decoupling"]["sequence_type"] == "XY4"
    assert "resilience_level" not in real.primitive_options("sampler")
    assert local.primitive_options("sampler")["simulator"] == {"seed_simulator": 1234}
    assert "simulator" not in real.primitive_options("sampler")


def test_get_backend_picks_the_class_of_the_kind():
    assert [type(get_backend(n)) for n in ("statevector", "aer-fake-torino", "ibm-local-fake-sherbrooke")] == [
        StatevectorBackend, AerBackend, IBMRuntimeBackend]


@pytest.mark.parametrize("raw, expected", [
    ({"kind": "aer", "device": "fake_nowhere"}, "p.yaml: device: unknown fake device 'fake_nowhere' (e.g. "
     "fake_sherbrooke, fake_torino, fake_manila; see qiskit_ibm_runtime.fake_provider)"),
    ({"kind": "aer", "device": "fake_manila", "shots": 0}, "p.yaml: shots: Input should be greater than 0"),
    ({"kind": "ibm", "device": "fake_manila", "shots": -5}, "p.yaml: shots: Input should be greater than 0"),
    ({"kind": "ibm", "device": "torino"}, "p.yaml: device: 'torino' is neither a fake_* snapshot (local testing "
     "mode) nor an IBM device name (ibm_*)"),
    ({"kind": "ibm", "device": "fake_nowhere"}, "p.yaml: device: unknown fake device 'fake_nowhere'"),
    ({"kind": "aer", "device": "fake_manila", "shot": 10}, "p.yaml: shot: unknown key"),
    ({"kind": "ibm", "device": "ibm_torino", "token": "abc"}, "p.yaml: token: unknown key (credentials never go in "
     "a profile: use a saved Qiskit account or QISKIT_IBM_TOKEN)"),
    ({"kind": "aer"}, "p.yaml: profile: an aer profile needs a device (fake_*) and/or a noise_model file"),
    ({"kind": "gpu"}, "p.yaml: kind: must be one of statevector, aer, ibm"),
    ({"device": "fake_manila"}, "p.yaml: kind: missing (one of statevector, aer, ibm)"),
    (["kind", "aer"], "p.yaml: top level must be a mapping, got list"),
    ({"kind": "aer", "noise_model": "missing.json"}, "p.yaml: noise_model: no such file 'missing.json'"),
    ({"kind": "ibm", "device": "ibm_torino", "mode": "fast"},
     "p.yaml: mode: Input should be 'batch', 'session' or 'job'"),
    ({"kind": "aer", "device": "fake_manila", "shots": 0, "seed": -1}, "(+1 more)"),
])
def test_profile_validation_is_one_line(raw, expected):
    assert expected in profile_error(raw)


def test_invalid_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [aer\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: invalid YAML \(") as info:
        load_profile(bad)
    assert "\n" not in str(info.value)


def test_profile_name_defaults_to_the_file_stem(tmp_path):
    (tmp_path / "my-aer.yaml").write_text("kind: aer\ndevice: fake_manila\n")
    (tmp_path / "named.yaml").write_text("kind: aer\ndevice: fake_manila\nname: other\n")
    assert load_profile(tmp_path / "my-aer.yaml").name == "my-aer"
    assert load_profile(tmp_path / "named.yaml").name == "other"


def test_unknown_profile_name_lists_shipped():
    with pytest.raises(ProfileError, match="no profile 'nope'.*aer-fake-sherbrooke"):
        load_profile("nope")


def test_student_wider_than_device_fails_before_running():
    with pytest.raises(ProfileError, match="fake_manila has 5 qubits, the hea student needs 6"):
        prepare_backend(parse_profile({"kind": "aer", "device": "fake_manila"}), [build_student("hea")])
    with pytest.raises(ProfileError, match="fake_manila has 5 qubits"):
        prepare_backend(parse_profile({"kind": "ibm", "device": "fake_manila"}), [build_student("q2")])
    assert prepare_backend("statevector", [build_student("hea")]).num_qubits is None
