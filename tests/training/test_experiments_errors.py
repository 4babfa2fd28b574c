"""`qkd run` input errors are one line before any work; damaged run files are named or repaired."""

import json
import shutil

import pytest
import torch

from qkd_qiskit.config import parse_config
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.models import MODELS
from qkd_qiskit.outdir import OutputDirError, lock_output_dir
from qkd_qiskit.rundir import RunFileError

TINY = {"name": "tiny", "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0}, "seeds": 2,
        "teacher": {"train": {"lr": 0.01, "max_epochs": 3, "patience": 3}},
        "students": [{"model": "linear", "kd": [False, True]}],
        "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16}}


def cfg_with(**patch):
    return parse_config({**TINY, **patch})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run_experiment(cfg_with(), out, progress=False)
    return out


@pytest.fixture
def run(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "run")


@pytest.mark.parametrize("patch, message", [
    ({"students": [{"model": "q2", "options": {"qubits": "six"}}]},
     "students.0.options.qubits: must be an integer >= 1, got 'six'"),
    ({"students": [{"model": "linear"}, {"model": "hea", "options": {"head_hidden": "abc"}}]},
     "students.1.options.head_hidden: must be a list of positive integers, got 'abc'"),
    ({"teacher": {"options": {"hidden": [-4]}}}, "teacher.options.hidden: must be a list of positive integers, got [-4]"),
    ({"students": [{"model": "q2", "options": {"qubits": 4, "layers": 1}}]},
     "students.0.options: q2 with qubits=4, layers=1: q_nd: measuring 2 qubits needs >= 2 layers"),
])
def test_bad_model_options_fail_before_anything_is_written(tmp_path, patch, message):
    with pytest.raises(ValueError) as err:
        run_experiment(cfg_with(**patch), tmp_path / "out", progress=False)
    assert str(err.value) == message
    assert not (tmp_path / "out").exists()


def test_any_builder_error_still_names_the_entry(tmp_path, monkeypatch):
    def broken(*args, **options):
        raise TypeError("unsupported operand type(s)\nsecond line")

    monkeypatch.setitem(MODELS, "linear", broken)
    with pytest.raises(ValueError) as err:
        run_experiment(cfg_with(), tmp_path / "out", progress=False)
    assert str(err.value) == "students.0.options: linear cannot be built with {} (unsupported operand type(s))"
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_one_line_before_training(tmp_path):
    with pytest.raises(ValueError) as err:
        run_experiment(cfg_with(device="cuda"), tmp_path / "out", progress=False)
    assert str(err.value) == "device: cuda requested but no CUDA device is available here (use device: cpu)"
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_usable_folder_nobody_else_writes(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError, match=r"^--out: .*file is a file, not a folder$"):
        run_experiment(cfg_with(), tmp_path / "file", progress=False)
    out = tmp_path / "busy"
    with lock_output_dir(out):  # another process (or caller) is writing there
        with pytest.raises(OutputDirError, match="is in use by another qkd process"):
            run_experiment(cfg_with(), out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".qkd.lock"]  # nothing was trained into it


def test_damaged_units_are_trained_again_and_named(run):
    units = run / "units"
    kept = units / "linear-kd-seed1" / "result.json"
    stamp = kept.stat().st_mtime_ns
    (units / "linear-kd-seed0" / "result.json").write_text('{"model": "lin')  # truncated
    (units / "linear-nokd-seed0" / "result.json").write_text("[]")
    (units / "linear-nokd-seed1" / "checkpoint.pt").write_bytes(b"")
    log = []
    rows = run_experiment(cfg_with(), run, progress=False, log=log.append)
    assert len(rows) == 6
    redone = sorted(line.split(": training ")[1] for line in log if ": training " in line)
    assert redone == ["linear-kd-seed0 again", "linear-nokd-seed0 again", "linear-nokd-seed1 again"]
    assert any("linear-kd-seed0/result.json is damaged" in line for line in log)
    assert any("linear-nokd-seed1/checkpoint.pt is missing or empty" in line for line in log)
    for key in ("linear-kd-seed0", "linear-nokd-seed0"):
        assert json.loads((units / key / "result.json").read_text())["model"] == "linear"
    assert (units / "linear-nokd-seed1" / "checkpoint.pt").stat().st_size > 0
    assert kept.stat().st_mtime_ns == stamp


def test_damaged_checkpoint_and_manifest_are_one_line_naming_the_file(run):
    ck = run / "units" / "teacher_mlp-teacher-seed0" / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:100])  # truncated, not empty: found where it is loaded
    shutil.rmtree(run / "units" / "linear-kd-seed0")  # a student to train: the teachers' logits are needed
    with pytest.raises(RunFileError) as err:
        run_experiment(cfg_with(), run, progress=False)
    text = str(err.value)
    assert text.startswith(f"{ck}: damaged checkpoint (") and "\n" not in text and f"delete {ck.parent}" in text
    (run / "manifest.json").write_text('{"config": {"na')
    with pytest.raises(RunFileError) as err:
        run_experiment(cfg_with(), run, progress=False)
    assert str(err.value).startswith(f"{run / 'manifest.json'}: damaged JSON (")
    (run / "manifest.json").write_text('{"run": "elsewhere", "backend": {}}')  # an evaluation's manifest
    with pytest.raises(ValueError, match=r"is not a `qkd run` folder \(its manifest.json has no config\)"):
        run_experiment(cfg_with(), run, progress=False)
