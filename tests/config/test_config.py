import subprocess

import pytest
import yaml
from conftest import ROOT, qkd_cmd

from qkd_qiskit.config import ConfigError, load_config, parse_config


def test_shipped_config_is_valid():
    cfg = load_config(ROOT / "configs" / "xor_classical.yaml")
    assert cfg.seeds == list(range(12)) and [s.model for s in cfg.students] == ["linear"]
    assert cfg.students[0].kd == [False, True] and cfg.student_train.lr == 0.1


@pytest.mark.parametrize("patch, message", [
    ({"colour": "red"}, "colour: unknown key"),
    ({"student_train": {"max_epochs": -3}}, "student_train.max_epochs: Input should be greater than or equal to 1"),
    ({"student_train": {"lr": "fast"}}, "student_train.lr: Input should be a valid number"),
    ({"students": [{"model": "resnet"}]}, "students.0.model: unknown model 'resnet'"),
    ({"seeds": 0}, "seeds: a seed count must be >= 1"),
    ({"data": {"split": [0.5, 0.5, 0.5]}}, "data.split: must be three positive fractions"),
    ({"teacher": {"train": {"patience": 1.5}}}, "teacher.train.patience: Input should be a valid integer"),
])
def test_config_errors_name_the_field(small_config_dict, patch, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**small_config_dict, **patch}, "cfg.yaml")
    text = str(err.value)
    assert text.startswith("cfg.yaml: ") and message in text and "\n" not in text


def test_cli_rejects_bad_config_before_training(tmp_path, small_config_dict):
    bad = {**small_config_dict, "student_train": {"max_epochs": -1}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run(qkd_cmd("run", str(path), "--out", str(tmp_path / "out")), capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "student_train.max_epochs" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_model_option_fails_before_training_naming_the_field(tmp_path, small_config_dict):
    from qkd_qiskit.experiments import run_experiment

    cfg = parse_config({**small_config_dict, "students": [{"model": "linear", "options": {"depth": 3}}]})
    with pytest.raises(ValueError, match=r"students\.0\.options: unknown option\(s\) \['depth'\]"):
        run_experiment(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
