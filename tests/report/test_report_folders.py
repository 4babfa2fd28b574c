"""`qkd report` on the wrong folder, or on damaged files: one line saying what it is and what to pass."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from qkd_qiskit.cli import app
from qkd_qiskit.config import parse_config
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.report import write_report

TINY = {"name": "tiny", "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0}, "seeds": 2,
        "teacher": {"train": {"lr": 0.01, "max_epochs": 3, "patience": 3}},
        "students": [{"model": "linear", "kd": [False, True]}],
        "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run_experiment(parse_config(TINY), out, progress=False)
    return out


def folder(tmp_path, name, manifest=None, files=()):
    d = tmp_path / name
    (d / "units" / "q2-kd-seed0").mkdir(parents=True)
    if manifest is not None:
        (d / "manifest.json").write_text(json.dumps(manifest))
    for f in files:
        (d / f).write_text("{}")
    return d


def cli_error(*args):
    res = CliRunner().invoke(app, list(map(str, args)), prog_name="qkd")
    assert res.exit_code == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.output
    return res.stderr.strip()


def test_other_commands_folders_say_what_they_are(tmp_path):
    ev = folder(tmp_path, "eval", {"run": "/data/runs/xor", "backend": {"kind": "aer"}, "test_subset": {}})
    assert cli_error("report", ev) == (f"error: RUN_DIR: {ev} is a `qkd evaluate` output folder (its tables are "
                                       "results.csv and summary.csv); `qkd report` takes the `qkd run` folder: "
                                       "qkd report /data/runs/xor")
    cal = folder(tmp_path, "cal", {"run": "/data/runs/xor", "backend": {}, "train_subset": {}})
    assert "is a `qkd calibrate` output folder" in cli_error("report", cal)
    jobs = folder(tmp_path / "run" / "jobs", "ibm-x", None, ["jobs.json"])
    assert cli_error("report", jobs) == (f"error: RUN_DIR: {jobs} is a `qkd submit` jobs folder (`qkd collect` "
                                         "writes its results.csv and summary.csv); `qkd report` takes the run "
                                         f"folder: qkd report {tmp_path / 'run'}")
    other = folder(tmp_path, "other", {"something": 1})
    assert cli_error("report", other) == f"error: RUN_DIR: {other / 'manifest.json'} has no config: {other} is not a `qkd run` folder"
    assert "is not a folder" in cli_error("report", tmp_path / "nowhere")


def test_damaged_manifest_is_one_line(tmp_path):
    d = folder(tmp_path, "run")
    (d / "manifest.json").write_text('{"config": {"name": "x", ')
    assert cli_error("report", d).startswith(f"error: {d / 'manifest.json'}: damaged JSON (")


def test_damaged_unit_is_reported_missing(trained, tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    (run / "units" / "linear-kd-seed1" / "result.json").write_text("[]")
    (run / "units" / "linear-nokd-seed0" / "checkpoint.pt").write_bytes(b"")
    out = write_report(run)
    assert out["missing"] == ["linear-nokd-seed0", "linear-kd-seed1"]
    assert {(s["model"], s["kd"], s["n_seeds"]) for s in out["summary"]} == {
        ("teacher_mlp (teacher)", False, 2), ("linear", False, 1), ("linear", True, 1)}
