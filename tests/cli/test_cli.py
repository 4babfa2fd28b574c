import json
import subprocess

import torch
from conftest import qkd_cmd

from qkd_qiskit.models import build_model, count_params


def test_qkd_circuits_json_lists_seven_architectures_with_q2_at_74():
    proc = subprocess.run(qkd_cmd("circuits", "--json"), capture_output=True, text=True, check=True)
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == ["hea", "universal", "universal_h", "q2", "q3", "q4", "q5"]
    for r in rows:
        assert {"name", "qubits", "weights", "head_params", "total_params", "depth", "two_qubit_gates"} <= set(r)
        assert r["total_params"] == count_params(build_model(r["name"], 64, 3, [torch.Generator()]))
        assert r["two_qubit_gates_fake_sherbrooke"] >= r["two_qubit_gates"] > 0
    assert next(r for r in rows if r["name"] == "q2")["total_params"] == 74


def test_qkd_circuits_draw_rejects_unknown_name():
    proc = subprocess.run(qkd_cmd("circuits", "--draw", "q9"), capture_output=True, text=True)
    assert proc.returncode == 2 and "--draw: unknown architecture 'q9'" in proc.stderr
