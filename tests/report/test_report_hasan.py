"""The Hasan & Mahdy study end to end: run, report, PCA independence from test data."""

import csv
import json
import subprocess

import numpy as np
import torch
from conftest import qkd_cmd

from qkd_qiskit.config import parse_config


def _gens(n):
    return [torch.Generator().manual_seed(i) for i in range(n)]


# ---------------------------------------------------------------------------------------- loaders



def _tiny_hasan(students, seeds=1, epochs=2):
    from qkd_qiskit.studies import study_config

    raw = study_config("hasan2023", dataset="digits").model_dump(mode="json")
    raw["data"].update(classes=[0, 1, 2, 3], per_class=40)
    raw["seeds"] = list(range(seeds))
    raw["teacher"]["train"].update(max_epochs=epochs, patience=2)
    raw["student_train"].update(max_epochs=epochs, patience=2)
    raw["students"] = [s for s in raw["students"] if s["name"] in students]
    return parse_config(raw, "tiny")


def test_quick_hasan_study_on_digits(tmp_path):
    from qkd_qiskit.experiments import run_experiment
    from qkd_qiskit.report import write_hasan_report

    cfg = _tiny_hasan({"q4_fc_amplitude", "q4_pca_angle", "q8_pool_dense_angle"})
    rows = run_experiment(cfg, tmp_path / "run", progress=False)
    assert len(rows) == 1 + 3 * 2
    assert {r["model"] for r in rows} == {"lenet5", "q4_fc_amplitude", "q4_pca_angle", "q8_pool_dense_angle"}
    out = write_hasan_report(tmp_path / "run")
    assert out["dataset"] == "digits" and not out["missing"]
    with open(tmp_path / "run" / "hasan_summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert summary[0]["student"] == "lenet5 (teacher)" and len(summary) == 7
    cell = next(s for s in summary if s["student"] == "q4_pca_angle" and s["kd"] == "True")
    assert (cell["qubits"], cell["reduction"], cell["encoding"]) == ("4", "pca", "angle")
    assert int(cell["n_params"]) == 36 + 4 * 4 + 4   # 3 layers x 4 qubits x 3 rotations + head 4 -> 4
    md = (tmp_path / "run" / "hasan_summary.md").read_text()
    assert "| q4_fc_amplitude | 4 | fc | amplitude |" in md and "Teacher lenet5" in md
    assert (tmp_path / "run" / "hasan_digits.png").read_bytes()[:4] == b"\x89PNG"
    # PCA was fitted on the training split only: its stored mean is the training mean
    from qkd_qiskit.data import load_dataset as load

    data = load(cfg.data.name, **cfg.data.loader_options())
    ck = torch.load(tmp_path / "run" / "units" / "q4_pca_angle-kd-seed0" / "checkpoint.pt", weights_only=True)
    assert np.allclose(ck["state"]["reduce.mean"].numpy(), data.x_train.mean(0), atol=1e-6)
    assert json.loads((tmp_path / "run" / "units" / "q4_pca_angle-kd-seed0" / "result.json").read_text())["model"] \
        == "q4_pca_angle"


def test_pca_components_do_not_depend_on_test_data(tmp_path, monkeypatch):
    import dataclasses

    from qkd_qiskit import experiments
    from qkd_qiskit.data import load_dataset as real_load

    cfg = _tiny_hasan({"q4_pca_amplitude"}, epochs=1)
    cfg = parse_config({**cfg.model_dump(mode="json"), "students": [
        {**cfg.students[0].model_dump(mode="json"), "kd": [False]}]}, "tiny")
    states = []
    for k in range(2):
        def fake(name, **options):
            ds = real_load(name, **options)
            noise = np.random.default_rng(k).random(ds.x_test.shape).astype(np.float32)
            return dataclasses.replace(ds, x_test=noise)

        monkeypatch.setattr(experiments, "load_dataset", fake)
        experiments.run_experiment(cfg, tmp_path / f"r{k}", progress=False)
        ck = torch.load(tmp_path / f"r{k}" / "units" / "q4_pca_amplitude-nokd-seed0" / "checkpoint.pt",
                        weights_only=True)
        states.append(ck["state"])
    for key in ("reduce.mean", "reduce.components", "reduce.lo", "reduce.span"):
        assert torch.equal(states[0][key], states[1][key])


def test_reproduce_rejects_unknown_dataset(tmp_path):
    proc = subprocess.run(qkd_cmd("reproduce", "hasan2023", "--dataset", "svhn", "--out", str(tmp_path / "o")),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--dataset: study hasan2023 has no dataset 'svhn'" in proc.stderr
