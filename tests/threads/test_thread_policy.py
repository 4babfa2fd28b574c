"""``--threads``: the torch threads a command runs with, recorded in its manifest; one line for a bad value."""

import json
import os
import subprocess

import pytest
import torch
import yaml
from conftest import HANG_GUARD_S, TINY_Q2, qkd_cmd

from qkd_qiskit.threads import DEFAULT_THREADS, apply_threads


def test_run_threads_option_beats_the_environment_and_is_in_the_manifest(tmp_path):
    """OMP_NUM_THREADS=1 in the environment, ``--threads 2`` on the command: the run uses 2 (the
    manifest reads torch.get_num_threads() of the process that trained)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_Q2))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    subprocess.run(qkd_cmd("run", str(config), "--out", str(out), "--threads", "2", "--no-progress"),
                   env=env, check=True, capture_output=True, timeout=HANG_GUARD_S)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["torch_threads"]["intra_op"] == 2


def test_negative_threads_is_one_line_exit_2(tmp_path):
    res = subprocess.run(qkd_cmd("run", "xor_classical", "--out", str(tmp_path / "r"), "--threads", "-1"),
                         check=False, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "--threads" in res.stderr


def test_apply_threads_sets_and_zero_keeps():
    before = torch.get_num_threads()
    try:
        assert apply_threads(DEFAULT_THREADS)["intra_op"] == DEFAULT_THREADS == torch.get_num_threads()
        torch.set_num_threads(2)
        assert apply_threads(0)["intra_op"] == 2  # 0: torch's own setting is kept
        with pytest.raises(ValueError, match="--threads"):
            apply_threads(-1)
    finally:
        torch.set_num_threads(before)
