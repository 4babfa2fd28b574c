"""Backend-calibrated heads: fitted on training read-outs only, chosen on validation, used by evaluate."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import train_run
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from qkd_qiskit import trained
from qkd_qiskit.backends import StatevectorBackend
from qkd_qiskit.calibrate import calibrate_run, fit_head, load_heads
from qkd_qiskit.evaluate import evaluate_run

RUN = {
    "name": "calib",
    "data": {"name": "xor", "n_samples": 200, "n_bits": 16, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 15, "patience": 5}},
    "students": [{"model": "hea", "kd": [False], "options": {"layers": 2}}],
    "student_train": {"lr": 0.1, "max_epochs": 25, "patience": 10, "batch_size": 16},
}
SHRINK, SHIFT = 0.2, 0.1


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return train_run(tmp_path_factory, RUN)


@pytest.fixture
def run(trained_run, tmp_path):
    """A private copy of the trained run (calibration writes into it)."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def shrinking_backend(monkeypatch):
    """The exact backend with every read-out shrunk as device noise does: a * exact + c."""
    exact = StatevectorBackend.readouts

    def shrunk(self, student, weights, angles, seed=None):
        return SHRINK * exact(self, student, weights, angles, seed) + SHIFT

    monkeypatch.setattr(StatevectorBackend, "readouts", shrunk)


def test_fit_head_equals_scikit_learn_on_standardised_readouts():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    r = np.eye(3)[y] * 0.3 + rng.normal(0, 0.05, (120, 3))
    head = fit_head(r[:80], y[:80], r[80:], y[80:], 3, grid=(1.0,))
    z = StandardScaler().fit(r[:80])
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(z.transform(r[:80]), y[:80])
    assert np.allclose(head.logits(r[80:]), ref.decision_function(z.transform(r[80:])), atol=1e-8)


def test_calibration_recovers_a_shrunk_readout_and_evaluate_reports_it(run, tmp_path, shrinking_backend):
    rows = calibrate_run(run, "statevector", samples=80, val_samples=20, progress=False)
    assert len(rows) == 2 and set(load_heads(run, "statevector")) == {"hea-nokd-seed0", "hea-nokd-seed1"}
    out = evaluate_run(run, "statevector", tmp_path / "eval", progress=False)
    for r in out:
        # the trained head answers with its biases on shrunk read-outs; the refitted one does not
        assert r["f1_macro_exact"] > 0.8
        assert r["f1_macro_calibrated"] >= r["f1_macro_exact"] - 0.05 > r["f1_macro_backend"]
    with open(tmp_path / "eval" / "results.csv") as f:
        assert all(row["f1_macro_calibrated"] != "" for row in csv.DictReader(f))
    manifest = json.loads((run / "calibration" / "statevector" / "manifest.json").read_text())
    assert manifest["train_subset"]["n"] == 80 and manifest["val_subset"]["n"] == 20


def test_calibration_never_reads_the_test_split(run, tmp_path, monkeypatch):
    real = trained.load_dataset

    def no_test(name, **options):  # NaN test features: any circuit run on them fails loudly
        ds = real(name, **options)
        return dataclasses.replace(ds, x_test=np.full_like(ds.x_test, np.nan))

    monkeypatch.setattr(trained, "load_dataset", no_test)
    rows = calibrate_run(run, "statevector", samples=40, val_samples=10, progress=False)
    assert len(rows) == 2
    with pytest.raises(ValueError, match="non-finite"):  # the same trap catches a run on test data
        evaluate_run(run, "statevector", tmp_path / "eval", progress=False)


def test_other_sample_counts_in_the_same_folder_are_refused(run):
    calibrate_run(run, "statevector", samples=40, val_samples=10, progress=False)
    with pytest.raises(ValueError, match="other sample counts"):
        calibrate_run(run, "statevector", samples=50, val_samples=10, progress=False)
