"""Config values a newcomer gets wrong: non-finite floats anywhere, too few images per class."""

import pytest
import yaml

from qkd_qiskit.backends import ProfileError, parse_profile
from qkd_qiskit.config import ConfigError, load_config, parse_config


@pytest.mark.parametrize("patch, message", [
    ({"student_train": {"lr": float("inf")}}, "student_train.lr: Input should be a finite number"),
    ({"teacher": {"train": {"lr": float("-inf")}}}, "teacher.train.lr: Input should be a finite number"),
    ({"kd": {"temperature": float("nan")}}, "kd.temperature: Input should be a finite number"),
    ({"kd": {"kd_weight": float("inf")}}, "kd.kd_weight: Input should be a finite number"),
    ({"data": {"split": [float("nan"), 0.5, 0.5]}}, "data.split.0: Input should be a finite number"),
    ({"students": [{"model": "linear", "train": {"lr": float("inf")}}]},
     "students.0.train.lr: Input should be a finite number"),
    ({"data": {"name": "digits", "per_class": 1}}, "data.per_class: Input should be greater than or equal to 2"),
])
def test_config_values_name_the_field(small_config_dict, patch, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**small_config_dict, **patch}, "cfg.yaml")
    assert str(err.value) == f"cfg.yaml: {message}"


def test_yaml_inf_is_rejected_at_load(tmp_path, small_config_dict):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(small_config_dict).replace("lr: 0.1", "lr: .inf"))
    assert ".inf" in path.read_text()
    with pytest.raises(ConfigError, match=r"student_train\.lr: Input should be a finite number"):
        load_config(path)


def test_unreadable_config_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: not a text file (expected YAML)"


def test_ibm_profile_refuses_seed_zero():
    # qiskit-ibm-runtime's local service drops a falsy seed_simulator: seed 0 would run unseeded
    with pytest.raises(ProfileError) as err:
        parse_profile({"kind": "ibm", "device": "fake_manila", "seed": 0}, "p.yaml")
    assert str(err.value).startswith("p.yaml: seed: must be >= 1: qiskit-ibm-runtime treats seed 0 as no seed")
    profile = parse_profile({"kind": "ibm", "device": "fake_manila", "seed": 1}, "p.yaml")
    assert profile.primitive_options("sampler")["simulator"] == {"seed_simulator": 1}
