"""The robustness study (qkd_qiskit.robustness): a tiny end-to-end study, the cell table against
SciPy / hand computations, and the CLI's one-line errors."""

import csv
import json
import subprocess

import numpy as np
import pytest
from scipy.stats import wilcoxon

from qkd_qiskit.config import parse_config
from qkd_qiskit.robustness import CELL_COLUMNS, robustness_cells, run_robustness
from qkd_qiskit.summaries import benjamini_hochberg

from conftest import HANG_GUARD_S, qkd_cmd

MANILA = """kind: aer
name: tiny-manila
device: fake_manila
shots: 512
seed: 5
optimization_level: 1
transpile_trials: 1
"""


def tiny_config(profile: str) -> dict:
    opts = {"qubits": 3, "layers": 1}
    return {
        "name": "tiny_robustness",
        "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
        "seeds": 2,
        "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
        "students": [{"name": "hea", "model": "hea", "kd": [False, True], "options": opts},
                     {"name": "hea_norm", "model": "hea", "kd": [False, True], "options": {**opts, "readout_norm": "batch"}},
                     {"name": "hea_nm", "model": "hea", "kd": [False, True], "options": {**opts, "noise": profile}}],
        "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("robustness")
    profile = root / "tiny-manila.yaml"
    profile.write_text(MANILA)
    cfg = parse_config(tiny_config(str(profile)))
    info = run_robustness(cfg, root / "out", devices=[str(profile)], samples=6, val_samples=6, progress=False)
    return root / "out", info


def test_study_writes_one_cell_per_variant_and_readout(study):
    out, info = study
    with open(out / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == CELL_COLUMNS
    assert {(r["variant"], r["readout"]) for r in table} == {
        (v, ro) for v in ("exact", "readout-norm", "noise-aware") for ro in ("raw", "calibrated")} | {
        ("readout-norm", "renormalised")}  # the trained head with the device's read-out statistics
    assert {r["student"] for r in table} == {"hea"} and {r["n_seeds"] for r in table} == {"2"}
    noisy = [r for r in table if r["variant"] == "noise-aware"]
    assert {r["trained_for"] for r in noisy} == {"tiny-manila"}
    # every evaluated unit: 2 seeds x KD off/on x 3 variants, each with a calibrated head (train/val only)
    assert len(info["rows"]) == 12 and all(r["f1_macro_calibrated"] is not None for r in info["rows"])
    assert (out / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    # evaluated by the PTM simulator (exact noisy probabilities, as Aer's density-matrix path)
    ways = json.loads((out / "eval" / "tiny-manila" / "manifest.json").read_text())["transpilation"]
    assert ways["hea_nm"]["noisy_probabilities"] == "ptm-split" and ways["hea"]["noisy_probabilities"].startswith("ptm-")
    assert "| hea | noise-aware | tiny-manila | raw |" in (out / "robustness.md").read_text()


def test_cells_match_scipy_wilcoxon_and_hand_bh():
    rng = np.random.default_rng(0)
    rows = []
    for variant, shift in (("exact", 0.05), ("noise-aware", -0.02)):
        for s in range(8):
            base = rng.uniform(0.6, 0.9)
            for kd in (False, True):
                rows.append({"student": "q2", "variant": variant, "device": "dev", "trained_for": None, "kd": kd,
                             "seed": s, "f1_macro_exact": 0.99, "f1_macro_calibrated": base + 0.1,
                             "f1_macro_backend": base + (shift + rng.normal(0, 0.01)) * kd})
    cells = robustness_cells(rows)
    assert [(c["variant"], c["readout"]) for c in cells] == [("exact", "raw"), ("exact", "calibrated"),
                                                              ("noise-aware", "raw"), ("noise-aware", "calibrated")]
    for c in cells:
        mine = [r for r in rows if r["variant"] == c["variant"]]
        key = "f1_macro_backend" if c["readout"] == "raw" else "f1_macro_calibrated"
        diff = np.array([r[key] for r in mine if r["kd"]]) - np.array([r[key] for r in mine if not r["kd"]])
        assert c["mean_diff"] == pytest.approx(diff.mean())
        expected = 1.0 if np.allclose(diff, 0) else wilcoxon(diff, zero_method="zsplit").pvalue
        assert c["p_wilcoxon"] == pytest.approx(expected)
        assert c["noisy_kd_mean"] == pytest.approx(np.mean([r[key] for r in mine if r["kd"]]))
    # BH by hand: sorted p_(i) * m / i, made monotone from the top
    p = np.array([c["p_wilcoxon"] for c in cells])
    order = np.argsort(p)
    adj = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    expected = np.empty_like(p)
    expected[order] = np.minimum(adj, 1)
    assert [c["p_bh"] for c in cells] == pytest.approx(expected.tolist())
    assert benjamini_hochberg([0.02, 0.04]) == [0.04, 0.04]


def test_cli_rejects_unknown_dataset_in_one_line(tmp_path):
    r = subprocess.run(qkd_cmd("reproduce", "robustness", "--dataset", "cifar10", "--out", str(tmp_path / "o")),
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--dataset" in r.stderr and "digits" in r.stderr
