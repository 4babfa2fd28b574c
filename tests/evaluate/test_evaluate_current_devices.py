"""A small noisy evaluation on each shipped current-generation Aer profile (Heron r2/r3, Nighthawk).

Cheap on purpose: one tiny trained q2 student (2 seeds), 6 test samples, the shipped profile as is."""

import json

import pytest
from conftest import train_run

from qkd_qiskit.evaluate import evaluate_run

SMALL_Q2 = {
    "name": "tiny_q2",
    "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
    "students": [{"model": "q2", "kd": [False], "options": {"layers": 2}}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}


@pytest.fixture(scope="module")
def small_q2_run(tmp_path_factory):
    return train_run(tmp_path_factory, SMALL_Q2)


@pytest.mark.parametrize("profile, device", [("aer-fake-kingston", "fake_kingston"), ("aer-fake-boston", "fake_boston"),
                                             ("aer-fake-nighthawk", "fake_nighthawk")])
def test_small_evaluation_on_current_devices(small_q2_run, tmp_path, profile, device):
    rows = evaluate_run(small_q2_run, profile, tmp_path / "eval", progress=False, max_samples=6)
    assert len(rows) == 2 and {r["model"] for r in rows} == {"q2"}
    for r in rows:
        assert 0 <= r["f1_macro_backend"] <= 1 and 0 <= r["prediction_agreement"] <= 1
        assert 0 < r["readout_mean_abs_error"] < 0.3  # noisy, but not garbage
    manifest = json.loads((tmp_path / "eval" / "manifest.json").read_text())
    assert manifest["backend"]["device"] == device and manifest["backend"]["shots"] == 1024
