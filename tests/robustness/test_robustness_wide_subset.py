"""Students wider than robustness.WIDE_QUBITS are evaluated on a fixed test subset in their own folder
(``OUT/eval-n<samples>/<device>``); the report takes each student from its own folder only, and says
how many test samples each student had. Checked on hand-written evaluation folders."""

import json

from qkd_qiskit.config import parse_config
from qkd_qiskit.robustness import WIDE_TEST_SAMPLES, markdown, robustness_cells, study_rows


def write_row(folder, model, kd, seed, f1, n_test):
    unit = folder / "units" / f"{model}-{'kd' if kd else 'nokd'}-seed{seed}"
    unit.mkdir(parents=True)
    row = {"model": model, "role": "student", "kd": kd, "seed": seed, "f1_macro_exact": 0.9,
           "f1_macro_backend": f1, "f1_macro_calibrated": None, "n_test": n_test}
    (unit / "result.json").write_text(json.dumps(row))
    (folder / "manifest.json").write_text("{}")


def test_each_student_comes_from_its_own_folder(tmp_path):
    cfg = parse_config({"name": "wide", "data": {"name": "xor", "n_samples": 60, "n_bits": 8},
                        "students": [{"name": "narrow", "model": "hea", "options": {"qubits": 3}},
                                     {"name": "wide", "model": "hea", "options": {"qubits": 7}}]})
    (tmp_path / "robustness.json").write_text(json.dumps({"devices": ["aer-fake-kingston"], "samples": 6,
                                                          "val_samples": 6}))
    full = tmp_path / "eval" / "aer-fake-kingston"
    subset = tmp_path / f"eval-n{WIDE_TEST_SAMPLES}" / "aer-fake-kingston"
    for seed in range(2):
        for kd in (False, True):
            write_row(full, "narrow", kd, seed, 0.5 + 0.1 * kd, 359)
            write_row(subset, "wide", kd, seed, 0.4 + 0.01 * seed, WIDE_TEST_SAMPLES)
            write_row(full, "wide", kd, seed, 0.0, 359)  # a stale full-split evaluation: not read
    rows = study_rows(tmp_path, cfg)
    assert sorted((r["model"], r["n_test"]) for r in rows) == [("narrow", 359)] * 4 + [("wide", WIDE_TEST_SAMPLES)] * 4
    cells = robustness_cells(rows)
    assert {(c["student"], c["n_test"], round(c["noisy_nokd_mean"], 3)) for c in cells} == {
        ("narrow", 359, 0.5), ("wide", WIDE_TEST_SAMPLES, 0.405)}
    assert f"narrow 359, wide {WIDE_TEST_SAMPLES}." in markdown(cells, {"devices": ["aer-fake-kingston"]})
