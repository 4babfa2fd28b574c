"""Device headline numbers (`qkd backends`): medians from the public Target, one row per profile."""

import statistics

import pytest

from qkd_qiskit.backends import fake_device, load_profile, resolve_profile_path
from qkd_qiskit.backends.devices import device_summary, target_error_medians
from qkd_qiskit.backends.listing import (
    COLUMNS,
    format_profile,
    format_profile_table,
    profile_summary,
    profile_table,
)
from qkd_qiskit.shipped import shipped_dir, shipped_names

CURRENT = {"aer-fake-kingston": ("fake_kingston", "Heron r2", 156), "aer-fake-boston": ("fake_boston", "Heron r3", 156),
           "aer-fake-nighthawk": ("fake_nighthawk", "Nighthawk r1", 120),
           "ibm-local-fake-kingston": ("fake_kingston", "Heron r2", 156)}


def test_medians_by_hand_from_the_kingston_target():
    """The medians equal a hand computation over the target's cz and measure entries."""
    target = fake_device("fake_kingston").target
    cz = sorted(props.error for props in target["cz"].values())
    readout = sorted(target["measure"][(q,)].error for q in range(target.num_qubits))
    assert len(cz) % 2 == 0 and len(readout) % 2 == 0  # even counts: the median is the mean of the middle two
    by_hand = ((cz[len(cz) // 2 - 1] + cz[len(cz) // 2]) / 2, (readout[len(readout) // 2 - 1] + readout[len(readout) // 2]) / 2)
    assert target_error_medians(target) == pytest.approx(by_hand, rel=1e-12)
    s = device_summary("fake_kingston")
    assert (s["median_2q_error"], s["median_readout_error"]) == pytest.approx(by_hand, rel=1e-12)
    assert s["qubits"] == 156 and s["two_qubit_gates"] == ["cz"] and s["processor"] == "Heron r2"
    assert len(s["snapshot"]) == 10 and s["snapshot"][4] == "-"


def test_eagle_medians_use_its_ecr_gates():
    s = device_summary("fake_sherbrooke")
    target = fake_device("fake_sherbrooke").target
    assert s["two_qubit_gates"] == ["ecr"] and s["processor"] == "Eagle r3"
    assert s["median_2q_error"] == pytest.approx(statistics.median(p.error for p in target["ecr"].values()))


def test_current_devices_are_less_noisy_than_the_older_stress_cases():
    rows = {r["name"]: r for r in profile_table()}
    for name, (device, processor, qubits) in CURRENT.items():
        assert (rows[name]["device"], rows[name]["processor"], rows[name]["qubits"]) == (device, processor, qubits)
    for old in ("aer-fake-sherbrooke", "aer-fake-torino"):
        assert rows["aer-fake-kingston"]["median_2q_error"] < rows[old]["median_2q_error"]
        assert "older generation" in load_profile(old).description


def test_profile_table_covers_every_shipped_profile():
    rows = profile_table()
    assert [r["name"] for r in rows] == shipped_names("backends")
    assert all(set(COLUMNS) <= set(r) for r in rows)
    text = format_profile_table(rows)
    assert text.splitlines()[0].split()[:3] == ["name", "kind", "device"]
    sv = next(r for r in rows if r["name"] == "statevector")
    assert sv["qubits"] is None and sv["shots"] is None
    real = next(r for r in rows if r["name"] == "ibm-example")
    assert real["device"] == "ibm_torino" and real["described_by"] == "fake_torino" and "fake_torino" in text


def test_one_profile_from_a_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("kind: aer\ndevice: fake_manila\nshots: 100\n")
    row = profile_summary(path)
    assert (row["name"], row["device"], row["qubits"], row["shots"]) == ("mine", "fake_manila", 5, 100)
    text = format_profile(row)
    assert "processor" in text and "Falcon" in text and text.rstrip().endswith("shots: 100")


def test_backends_path_resolves_to_the_shipped_profile_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no backends/ folder here
    assert resolve_profile_path("backends/aer-fake-kingston.yaml") == shipped_dir("backends") / "aer-fake-kingston.yaml"
    assert resolve_profile_path("aer-fake-kingston.yaml") == shipped_dir("backends") / "aer-fake-kingston.yaml"
