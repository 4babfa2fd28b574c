"""`qkd configs`, `qkd backends` and `qkd --version`."""

import json
import subprocess

from conftest import HANG_GUARD_S, qkd_cmd

from qkd_qiskit import __version__
from qkd_qiskit.shipped import shipped_names


def qkd(*args, cwd=None):
    return subprocess.run(qkd_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=HANG_GUARD_S)


def test_version():
    proc = qkd("--version")
    assert proc.returncode == 0 and proc.stdout == f"qkd-qiskit {__version__}\n"


def test_configs_table_and_json(tmp_path):
    proc = qkd("configs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["config", "dataset", "teacher", "students", "seeds", "units", "run", "with"]
    assert [line.split()[0] for line in lines[1:]] == shipped_names("configs")
    piperno = next(line for line in lines if line.startswith("piperno2024_xor "))
    assert piperno.split()[1:6] == ["xor", "teacher_mlp", "linear,hea,universal,universal_h,q2,q3,q4,q5", "12", "204"]
    assert piperno.endswith("qkd reproduce piperno2024")
    rows = json.loads(qkd("configs", "--json").stdout)
    hasan = next(r for r in rows if r["name"] == "hasan2023_mnist")
    assert hasan["dataset"] == "mnist" and len(hasan["students"]) == 24 and hasan["seeds"] == 3
    assert hasan["run"] == "qkd reproduce hasan2023 --dataset mnist"


def test_backends_table_one_profile_and_errors(tmp_path):
    proc = qkd("backends", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:6] == ["name", "kind", "device", "processor", "snapshot", "qubits"]
    kingston = next(line.split() for line in lines if line.startswith("aer-fake-kingston "))
    assert kingston[:5] == ["aer-fake-kingston", "aer", "fake_kingston", "Heron", "r2"]  # then the snapshot date
    assert kingston[6] == "156" and kingston[-1] == "1024"
    assert {line.split()[0] for line in lines[1:] if not line.startswith("(")} == set(shipped_names("backends"))

    one = qkd("backends", "aer-fake-nighthawk", cwd=tmp_path)
    assert one.returncode == 0 and "Nighthawk r1" in one.stdout and "device: fake_nighthawk" in one.stdout
    row = json.loads(qkd("backends", "aer-fake-nighthawk", "--json").stdout)
    assert row["qubits"] == 120 and 0 < row["median_2q_error"] < 0.05 and 0 < row["median_readout_error"] < 0.05

    profile = tmp_path / "p.yaml"
    profile.write_text("kind: ibm\ndevice: fake_kingston\nshots: 10\n")
    row = json.loads(qkd("backends", str(profile), "--json").stdout)
    assert (row["name"], row["kind"], row["shots"], row["processor"]) == ("p", "ibm", 10, "Heron r2")

    bad = qkd("backends", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "aer-fake-kingston" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
