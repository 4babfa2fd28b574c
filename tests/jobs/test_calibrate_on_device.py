"""`qkd calibrate` on an ibm profile (local testing mode): calibration circuits through the job ledger."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S

from qkd_qiskit.backends import get_backend
from qkd_qiskit.calibrate import TRAIN_SUBSET_SEED, VAL_SUBSET_SEED, fit_head, load_heads
from qkd_qiskit.data import stratified_subset
from qkd_qiskit.jobs import Ledger, plan_items
from qkd_qiskit.trained import circuit_angles, load_run, quantum_groups

ROOT = Path(__file__).resolve().parents[2]
SAMPLES, VAL = 12, 6


def cli(*args):
    return subprocess.run([sys.executable, "-m", "qkd_qiskit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=HANG_GUARD_S)


@pytest.fixture
def run(tiny_q2_run, tmp_path):
    """A private copy of the shared tiny q2 run (the tests write jobs/ and calibration/ into it)."""
    return Path(shutil.copytree(tiny_q2_run, tmp_path / "run"))


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "local-manila.yaml"
    path.write_text("kind: ibm\ndevice: fake_manila\nmode: batch\nshots: 256\nseed: 7\n")
    return path


def test_dry_run_prints_the_calibration_budget_and_submits_nothing(run, profile):
    proc = cli("calibrate", run, "--backend", profile, "--samples", SAMPLES, "--val-samples", VAL, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"2 calibration jobs, {2 * (SAMPLES + VAL)} circuits x 256 shots" in proc.stdout
    assert "nothing submitted" in proc.stdout and not (run / "jobs").exists() and not (run / "calibration").exists()


def test_calibration_jobs_survive_a_crash_and_fit_heads_on_training_readouts(run, profile):
    crash = ("import os, qkd_qiskit.jobs.runner as j, qkd_qiskit.jobs.calibration as c; "
             "j._after_record = lambda ledger: os._exit(17); "
             f"c.calibrate_on_device({str(run)!r}, {str(profile)!r}, {SAMPLES}, {VAL})")
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, cwd=ROOT,
                          env=os.environ, timeout=HANG_GUARD_S)
    assert proc.returncode == 17, proc.stderr
    book = json.loads((run / "jobs" / "local-manila" / "jobs.json").read_text())["jobs"]
    (key, rec), = book.items()  # the first id was on disk before the process died
    assert key.endswith("@calibration") and rec["status"] == "submitted" and rec["n_circuits"] == SAMPLES + VAL

    proc = cli("calibrate", run, "--backend", profile, "--samples", SAMPLES, "--val-samples", VAL)
    assert proc.returncode == 0, proc.stderr
    assert "died with its process; rerunning" in proc.stdout
    book = json.loads((run / "jobs" / "local-manila" / "jobs.json").read_text())["jobs"]
    assert len(book) == 2 and all(r["status"] == "done" for r in book.values())
    assert book[key]["previous"][0]["status"] == "lost"
    heads = load_heads(run, "local-manila")
    assert set(heads) == {"q2-nokd-seed0", "q2-kd-seed0"}

    # oracle: the same jobs' read-outs, split by hand into training and validation rows, refitted
    # with scikit-learn, give the stored head; the inputs are the training/validation subsets only
    run_dir, cfg, data = load_run(run)
    tr = stratified_subset(data.y_train, SAMPLES, seed=TRAIN_SUBSET_SEED)
    va = stratified_subset(data.y_val, VAL, seed=VAL_SUBSET_SEED)
    backend = get_backend(profile)
    ledger = Ledger(run / "jobs" / "local-manila", json.loads((run / "jobs/local-manila/jobs.json").read_text()))
    for it in plan_items(run_dir, cfg, data, quantum_groups(run_dir, cfg)):
        result = ledger.load_result(it.unit.key + "@calibration")
        r = backend.result_readouts(it.student, result)
        assert len(r) == SAMPLES + VAL
        expected = fit_head(r[:SAMPLES], data.y_train[tr], r[SAMPLES:], data.y_val[va], data.n_classes)
        assert np.allclose(heads[it.unit.key].coef, expected.coef)
        # the circuits ran on the training then validation inputs (never the test split)
        angles = np.vstack([circuit_angles(it.net, data.x_train[tr])[it.m], circuit_angles(it.net, data.x_val[va])[it.m]])
        fresh = backend.readouts(it.student, it.weights, angles)
        assert np.array_equal(fresh, r)

    again = cli("calibrate", run, "--backend", profile, "--samples", SAMPLES, "--val-samples", VAL)
    assert again.returncode == 0 and "submitted" not in again.stdout  # nothing new to run
