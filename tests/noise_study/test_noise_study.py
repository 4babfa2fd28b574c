"""The noise study end to end on a small run and a small device."""

import csv

import pytest

from qkd_qiskit.backends import Compacted
from qkd_qiskit.config import parse_config
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.noisy import PtmSampler
from qkd_qiskit.noise_study import noise_study

RUN = {
    "name": "noise",
    "data": {"name": "xor", "n_samples": 80, "n_bits": 16, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
    "students": [{"model": "hea", "kd": [False, True], "options": {"layers": 1}}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}


def test_noise_study_writes_raw_and_calibrated_scores_per_profile_and_shots(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_experiment(parse_config(RUN), run, progress=False)
    profile = tmp_path / "manila.yaml"
    profile.write_text("kind: aer\ndevice: fake_manila\nshots: 128\nseed: 3\n")
    simulated, aer = [], []
    original = PtmSampler.z_strings  # the PTM path computes the exact noisy probabilities (not Aer's)
    monkeypatch.setattr(PtmSampler, "z_strings", lambda self, *a: simulated.append(1) or original(self, *a))
    monkeypatch.setattr(Compacted, "_simulate", lambda self, *a: aer.append(1))
    table = noise_study(run, [str(profile)], [64, 256], samples=12, val_samples=6, max_samples=8,
                        mitigations=["none", "mthree"], progress=False, log=lambda s: None)
    assert {(r["shots"], r["kd"], r["mitigation"]) for r in table} == {
        (s, kd, m) for s in (64, 256) for kd in (False, True) for m in ("none", "mthree")}
    # 4 units x (train + validation + test inputs): one noisy simulation each, whatever the number
    # of shot counts and mitigations (the exact noisy probabilities are memoised)
    assert len(simulated) == 4 * 3 and not aer
    assert all(r["f1_calibrated_mean"] is not None and r["seeds"] == 2 for r in table)
    for shots in (64, 256):  # each (profile, shots) has its own calibration and evaluation folders
        assert (run / "calibration" / f"manila-{shots}" / "results.csv").is_file()
        with open(run / "noise" / f"manila-{shots}" / "results.csv") as f:
            assert {r["shots"] for r in csv.DictReader(f)} == {str(shots)}
    assert (run / "noise" / "noise_study.png").read_bytes()[:4] == b"\x89PNG"
    assert "| manila | 64 | none | hea |" in (run / "noise" / "noise_study.md").read_text()


def test_noise_study_rejects_a_non_aer_profile(tmp_path):
    with pytest.raises(ValueError, match="aer profiles"):
        noise_study(tmp_path, ["statevector"], [64], progress=False, log=lambda s: None)
