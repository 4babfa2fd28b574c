"""Every user error of the `qkd` command is one line `error: ...` on stderr and exit code 2, option
errors included (no usage box)."""

import os
import subprocess

import pytest
import yaml
from conftest import HANG_GUARD_S, qkd_cmd
from typer.testing import CliRunner

from qkd_qiskit.cli import app
from qkd_qiskit.outdir import lock_output_dir


def cli_error(*args):
    res = CliRunner().invoke(app, list(map(str, args)), prog_name="qkd")
    assert res.exit_code == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith("error: ")
    return res.stderr.strip().removeprefix("error: ")


@pytest.mark.parametrize("args, message", [
    (["evaluate", "r", "--backend", "statevector", "--out", "o", "--max-samples", "0"],
     "Invalid value for '--max-samples': Input should be greater than or equal to 1 (qkd evaluate --help)"),
    (["submit", "r", "--backend", "b", "--max-samples", "x"], "Invalid value for '--max-samples'"),
    (["run", "c.yaml"], "Missing option '--out' (qkd run --help)"),
    (["run"], "Missing argument 'config' (qkd run --help)"),
    (["report", "a", "b"], "Got unexpected extra argument(s) (b) (qkd report --help)"),
    (["circuits", "--qubits", "1"], "Invalid value for '--qubits'"),
    (["circuits", "--colour"], "No such option: --colour"),
    (["frobnicate"], "No such command 'frobnicate' (qkd --help)"),
])
def test_option_errors_are_one_line(args, message):
    assert cli_error(*args).startswith(message)


def test_option_error_in_a_real_process():
    proc = subprocess.run(qkd_cmd("evaluate", "r", "--backend", "statevector", "--out", "o", "--max-samples", "0"),
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: Invalid value for '--max-samples': Input should be greater than or "
                                        "equal to 1 (qkd evaluate --help)"]


def test_circuits_drawing_errors(tmp_path):
    assert cli_error("circuits", "--draw", "q2", "--out", "/nonexistent/x.png") == \
        "--out: /nonexistent/x.png: folder /nonexistent does not exist"
    assert cli_error("circuits", "--draw", "q2", "--out", tmp_path) == f"--out: {tmp_path} is a folder; give a file name"
    assert cli_error("circuits", "--out", tmp_path / "x.png") == "--out: only used with --draw (the table goes to stdout)"
    assert cli_error("circuits", "--draw", "q2", "--qubits", "2").startswith("--draw: unknown architecture 'q2' for 2")


@pytest.fixture
def config(tmp_path, small_config_dict):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(small_config_dict))
    return path


def test_unusable_out_is_one_line_before_work(tmp_path, config):
    (tmp_path / "file").write_text("x")
    assert cli_error("run", config, "--out", tmp_path / "file") == f"--out: {tmp_path / 'file'} is a file, not a folder"
    if os.path.isdir("/proc/self"):
        assert cli_error("run", config, "--out", "/proc/qkd").startswith("--out: /proc/qkd is not writable")
    busy = tmp_path / "busy"
    with lock_output_dir(busy):
        for args in (["run", config], ["reproduce", "piperno2024", "--quick"],
                     ["evaluate", tmp_path, "--backend", "statevector"]):
            assert "is in use by another qkd process" in cli_error(*args, "--out", busy)
    assert [p.name for p in busy.iterdir()] == [".qkd.lock"]
