"""Image (Hasan & Mahdy) students on every backend: the circuit embeds each model's own reduction.

Oracle: on the ``statevector`` profile the backend path (reduction -> input values -> Qiskit
primitives) must reproduce the engine-trained model exactly; on Aer it must be noisy but close;
on IBM Runtime local testing mode the same circuits are submitted and collected.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_run
from qiskit.quantum_info import Statevector

from qkd_qiskit import jobs
from qkd_qiskit.evaluate import evaluate_run
from qkd_qiskit.trained import circuit_angles, load_group, load_run, quantum_groups

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "name": "tiny_images",
    "data": {"name": "digits", "classes": [0, 1, 2], "per_class": 30, "seed": 0, "val_fraction": 0.2},
    "seeds": 2,
    "teacher": {"model": "lenet5", "train": {"lr": 0.005, "max_epochs": 3, "patience": 3}},
    "students": [
        {"name": "fc_amp", "model": "hasan", "kd": [False, True],
         "options": {"qubits": 3, "layers": 1, "reduction": "fc", "encoding": "amplitude"}},
        {"name": "pca_dense", "model": "hasan", "kd": [True],
         "options": {"qubits": 2, "layers": 1, "reduction": "pca", "encoding": "dense_angle"}},
    ],
    "student_train": {"lr": 0.05, "max_epochs": 3, "patience": 3, "batch_size": 16},
}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return train_run(tmp_path_factory, TINY)


def test_circuit_angles_follow_each_models_reduction(image_run):
    """Input values from ``circuit_angles`` put each model's reduced features into the circuit:
    Statevector of the bound circuit gives the engine's readout for that model."""
    run, cfg, data = load_run(image_run)
    group = next(g for g in quantum_groups(run, cfg) if g.label == "fc_amp" and g.kd)
    net = load_group(run, cfg, data, group)
    x = data.x_test[:4]
    angles = circuit_angles(net, x)
    assert angles.shape[:2] == (2, 4)
    assert np.abs(angles[0] - angles[1]).max() > 1e-3  # the two seeds trained different FC reductions
    st = net.quantum.student
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32).unsqueeze(0).expand(2, -1, -1)
        engine = net.quantum(net.circuit_features(xt)).double().numpy()
    for m in range(2):
        w = net.quantum.weights[m].detach().double().numpy()
        for i in range(len(x)):
            bind = dict(zip(st.input_params, angles[m, i])) | dict(zip(st.weight_params, w))
            sv = Statevector(st.circuit.assign_parameters(bind))
            z = [sv.expectation_value(o).real for o in st.observables()]
            assert np.abs(np.array(z) - engine[m, i]).max() < 1e-4  # float32 engine


def test_image_students_evaluate_on_statevector_and_aer(image_run, tmp_path):
    exact = evaluate_run(image_run, "statevector", tmp_path / "sv", progress=False)
    assert {r["model"] for r in exact} == {"fc_amp", "pca_dense"} and len(exact) == 6
    assert all(r["readout_mean_abs_error"] < 1e-5 and r["prediction_agreement"] == 1.0 for r in exact)
    for r in exact:  # the exact side equals what training recorded for the unit
        kind = "kd" if r["kd"] else "nokd"
        rec = json.loads((image_run / "units" / f"{r['model']}-{kind}-seed{r['seed']}" / "result.json").read_text())
        assert r["accuracy_exact"] == pytest.approx(rec["accuracy"])
    profile = tmp_path / "aer.yaml"
    profile.write_text("kind: aer\ndevice: fake_torino\nshots: 512\nseed: 3\n")
    noisy = evaluate_run(image_run, profile, tmp_path / "aer", progress=False)
    assert len(noisy) == 6
    assert all(0 < r["readout_mean_abs_error"] < 0.3 for r in noisy)
    manifest = json.loads((tmp_path / "aer" / "manifest.json").read_text())
    assert set(manifest["transpilation"]) == {"fc_amp", "pca_dense"}


def test_image_students_round_trip_through_runtime_local_mode(image_run, tmp_path):
    run = Path(shutil.copytree(image_run, tmp_path / "run"))
    profile = tmp_path / "local-manila.yaml"
    profile.write_text("kind: ibm\ndevice: fake_manila\nmode: batch\nshots: 256\nseed: 7\n")
    rows = jobs.dry_run(run, profile, log=lambda s: None)
    assert {r["model"] for r in rows} == {"fc_amp", "pca_dense"} and sum(r["jobs"] for r in rows) == 6
    jobs.submit_jobs(run, profile, log=lambda s: None)
    out, report = jobs.collect_jobs(run, profile, log=lambda s: None)
    assert len(report["done"]) == 6 and len(out) == 6
    assert all(0 <= r["f1_macro_backend"] <= 1 and r["readout_mean_abs_error"] < 0.3 for r in out)


def test_students_filter_and_unknown_name(image_run, tmp_path):
    rows = evaluate_run(image_run, "statevector", tmp_path / "one", progress=False, students=["pca_dense"])
    assert {r["model"] for r in rows} == {"pca_dense"} and len(rows) == 2
    proc = subprocess.run([sys.executable, "-m", "qkd_qiskit.cli", "evaluate", str(image_run), "--backend",
                           "statevector", "--out", str(tmp_path / "bad"), "--students", "pca_dense,nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and not (tmp_path / "bad").exists()
    assert proc.stderr.strip() == "error: students: nope not among the run's quantum students (fc_amp, pca_dense)"


def test_max_samples_evaluates_a_stratified_subset(image_run, tmp_path):
    from qkd_qiskit.data import stratified_subset

    y = np.repeat(np.arange(3), [10, 20, 30])
    idx = stratified_subset(y, 12)
    assert len(idx) == 12 and np.bincount(y[idx]).tolist() == [2, 4, 6]
    assert np.array_equal(idx, stratified_subset(y, 12)) and len(stratified_subset(y, None)) == 60
    with pytest.raises(ValueError, match="max_samples: 2 is fewer than the 3 test classes"):
        stratified_subset(y, 2)
    rows = evaluate_run(image_run, "statevector", tmp_path / "sub", progress=False, students=["pca_dense"],
                        max_samples=9)
    assert all(r["n_test"] == 9 and r["readout_mean_abs_error"] < 1e-5 for r in rows)
    manifest = json.loads((tmp_path / "sub" / "manifest.json").read_text())
    assert manifest["test_subset"]["n"] == 9
    with pytest.raises(ValueError, match="test subset"):
        evaluate_run(image_run, "statevector", tmp_path / "sub", progress=False, students=["pca_dense"])


def test_submit_with_max_samples_keeps_the_subset_for_collect(image_run, tmp_path):
    run = Path(shutil.copytree(image_run, tmp_path / "run"))
    profile = tmp_path / "local-manila.yaml"
    profile.write_text("kind: ibm\ndevice: fake_manila\nmode: batch\nshots: 128\nseed: 7\n")
    rows = jobs.dry_run(run, profile, log=lambda s: None, students=["pca_dense"], max_samples=6)
    assert all(r["circuits_per_job"] == 6 for r in rows)
    jobs.submit_jobs(run, profile, log=lambda s: None, students=["pca_dense"], max_samples=6)
    ledger = json.loads((run / "jobs" / "local-manila" / "jobs.json").read_text())
    assert ledger["test_subset"]["n"] == 6 and len(ledger["test_subset"]["indices"]) == 6
    assert all(rec["n_circuits"] == 6 for rec in ledger["jobs"].values())
    out, report = jobs.collect_jobs(run, profile, log=lambda s: None)
    assert len(report["done"]) == 2 and len(out) == 2 and all(r["n_test"] == 6 for r in out)
    with pytest.raises(ValueError, match="max_samples: the jobs in .* use max_samples=6"):
        jobs.submit_jobs(run, profile, log=lambda s: None, max_samples=9)
