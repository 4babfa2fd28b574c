"""A tiny `qkd run` of the robust variants (read-out normalisation, approximate embedding), rebuilt
through `trained` the way evaluate / calibrate / jobs do: the rebuilt circuit is the trained one (its
Walsh terms come from the checkpoint), and its logits equal the head applied to Qiskit Statevector
read-outs of that circuit; the test F1 of the rebuilt students is the one the run recorded."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from qiskit import transpile
from qiskit.quantum_info import Statevector
from sklearn.metrics import f1_score

from conftest import train_run
from qkd_qiskit.models import readout_statistics
from qkd_qiskit.rundir import RunFileError
from qkd_qiskit.trained import circuit_angles, group_student, head_logits, load_group, load_run, quantum_groups

TINY_ROBUST = {
    "name": "tiny_robust",
    "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
    "students": [
        {"name": "hea_robust", "model": "hea", "kd": [False],
         "options": {"layers": 1, "readout_norm": "batch", "embedding_cx": 2}},
        {"name": "q2_norm", "model": "q2", "kd": [True], "options": {"layers": 1, "readout_norm": "affine"}},
    ],
    "student_train": {"lr": 0.1, "max_epochs": 4, "patience": 4, "batch_size": 8},
}


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    return train_run(tmp_path_factory, TINY_ROBUST)


def statevector_readouts(student, weights, angles):
    circuit = transpile(student.circuit.remove_final_measurements(inplace=False),
                        basis_gates=["ry", "rz", "sx", "x", "cx"], optimization_level=0)
    out = []
    for a in angles:
        psi = Statevector(circuit.assign_parameters(dict(zip(student.input_params + student.weight_params,
                                                              [*a, *weights]))))
        if student.readout == "z":
            out.append([psi.expectation_value(o).real for o in student.observables()])
        else:
            out.append(psi.probabilities(list(student.readout_qubits)))
    return np.array(out)


def test_rebuilt_students_are_the_trained_circuits_and_logits(robust_run):
    run, cfg, data = load_run(robust_run)
    for group in quantum_groups(run, cfg):
        net, student = load_group(run, cfg, data, group), group_student(cfg, data, group)
        if group.label == "hea_robust":
            saved = run.load_checkpoint(group.units[0])["state"]["embedding_terms"]
            assert student.embedding_terms == tuple(np.flatnonzero(saved.numpy()))
            assert student.circuit.decompose(gates_to_decompose=["mux_ry"]).count_ops()["cx"] == 2 + 2  # + hea's ring
        angles = circuit_angles(net, data.x_test)
        with torch.no_grad():
            engine = net(torch.as_tensor(data.x_test, dtype=torch.float32).expand(len(group.units), -1, -1)).numpy()
        for m, unit in enumerate(group.units):
            readouts = statevector_readouts(student, net.quantum.weights[m].detach().double().numpy(), angles[m])
            assert np.allclose(head_logits(net, m, readouts), engine[m], atol=1e-4)
            recorded = json.loads((run.unit_dir(unit) / "result.json").read_text())["f1_macro"]
            assert f1_score(data.y_test, engine[m].argmax(1), average="macro") == pytest.approx(recorded, abs=1e-12)


def test_backend_statistics_cancel_an_affine_shrink_through_trained(robust_run):
    run, cfg, data = load_run(robust_run)
    group = next(g for g in quantum_groups(run, cfg) if g.label == "hea_robust")
    net, student = load_group(run, cfg, data, group), group_student(cfg, data, group)
    w = net.quantum.weights[0].detach().double().numpy()
    r_train = statevector_readouts(student, w, circuit_angles(net, data.x_train)[0])
    r_test = statevector_readouts(student, w, circuit_angles(net, data.x_test)[0])
    a, c = np.array([0.2, 0.6, 0.3]), np.array([0.02, -0.05, 0.0])
    exact = head_logits(net, 0, r_test, readout_statistics(r_train))
    noisy = head_logits(net, 0, a * r_test + c, readout_statistics(a * r_train + c))
    assert (noisy.argmax(1) == exact.argmax(1)).all()
    assert np.allclose(noisy, exact, atol=5e-3)


def test_a_checkpoint_of_other_terms_does_not_load(robust_run):
    run, cfg, data = load_run(robust_run)
    group = next(g for g in quantum_groups(run, cfg) if g.label == "hea_robust")
    other = dataclasses.replace(group, options={**group.options, "embedding_terms": [0, 1, 3, 5]})
    with pytest.raises(RunFileError, match="embedding_terms"):
        load_group(run, cfg, data, other)


def test_evaluate_reports_the_backend_renormalised_score(robust_run, tmp_path):
    """`qkd calibrate` then `qkd evaluate`: normalised students get ``f1_macro_renormalised`` (the
    trained head on noisy read-outs standardised with the calibration's training statistics), and
    it equals the score of those logits recomputed from the stored head and the same read-outs."""
    import csv
    import shutil

    from qkd_qiskit.calibrate import calibrate_run, load_heads
    from qkd_qiskit.evaluate import evaluate_run
    from qkd_qiskit.backends import get_backend
    from qkd_qiskit.data import stratified_subset
    from qkd_qiskit.rundir import unit_seed

    run = shutil.copytree(robust_run, tmp_path / "run")
    profile = tmp_path / "manila.yaml"
    profile.write_text("kind: aer\ndevice: fake_manila\nshots: 256\nseed: 3\n")
    calibrate_run(run, profile, samples=12, val_samples=6, progress=False)
    evaluate_run(run, profile, tmp_path / "eval", progress=False, max_samples=8)
    with open(tmp_path / "eval" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["f1_macro_renormalised"] != "" for r in rows)  # every student here is normalised
    heads = load_heads(run, "manila")
    assert all(h.mean and h.scale for h in heads.values())
    run_dir, cfg, data = load_run(run)
    group = next(g for g in quantum_groups(run_dir, cfg) if g.label == "hea_robust")
    net, unit = load_group(run_dir, cfg, data, group), group.units[0]
    idx = stratified_subset(data.y_test, 8)
    backend = get_backend(profile)
    out = backend.readouts(net.quantum.student, net.quantum.weights[0].detach().double().numpy(),
                           circuit_angles(net, data.x_test[idx])[0], seed=unit_seed(backend.profile.seed, unit))
    head = heads[unit.key]
    stats = (torch.tensor(head.mean, dtype=torch.float64), torch.tensor(head.scale, dtype=torch.float64) ** 2)
    pred = head_logits(net, 0, out, stats).argmax(1)
    want = f1_score(data.y_test[idx], pred, labels=list(range(data.n_classes)), average="macro", zero_division=0)
    row = json.loads((tmp_path / "eval" / "units" / unit.key / "result.json").read_text())
    assert row["f1_macro_renormalised"] == pytest.approx(want)
