"""Help and notes a person reads: flags without ``<bool>`` metavars, why q_nd students are missing."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import qkd_cmd


@pytest.mark.parametrize("command", ["run", "reproduce", "evaluate", "submit", "collect", "circuits", "bench"])
def test_help_shows_flags_without_bool_metavars(command):
    proc = subprocess.run(qkd_cmd(command, "--help"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout and "--help" in proc.stdout
    if command in ("run", "reproduce"):
        assert "--progress / --no-progress" in proc.stdout


def test_circuits_with_three_qubits_says_why_q3_to_q5_are_absent():
    proc = subprocess.run(qkd_cmd("circuits", "--qubits", "3"), capture_output=True, text=True, check=True)
    assert "q2" in proc.stdout and "q3 " not in proc.stdout.splitlines()[-2]
    assert "q3..q5 not shown" in proc.stdout and "needs n_d < qubits (3)" in proc.stdout
    assert "effective_params" in proc.stdout.splitlines()[0]
    as_json = subprocess.run(qkd_cmd("circuits", "--qubits", "3", "--json"), capture_output=True, text=True,
                             check=True)
    assert [r["name"] for r in json.loads(as_json.stdout)][-1] == "q2"  # the note goes to stderr
    assert "q3..q5 not shown" in as_json.stderr
