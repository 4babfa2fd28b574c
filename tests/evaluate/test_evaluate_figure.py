"""`qkd evaluate` output for people: exact_vs_backend.png next to the tables, progress as plain lines
in a log, rounded CSV floats (result.json keeps full precision)."""

from __future__ import annotations

import csv
import json

import pytest

from qkd_qiskit.evaluate import evaluate_run, exact_vs_backend_figure


@pytest.fixture(scope="module")
def tiny(tiny_q2_run):
    return tiny_q2_run


def test_evaluate_writes_the_figure_and_logs_plain_progress(tiny, tmp_path, capsys):
    rows = evaluate_run(tiny, "statevector", tmp_path / "eval", progress=True)  # captured stderr: no terminal
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err and "evaluate on statevector: 2/2 done" in err
    png = (tmp_path / "eval" / "exact_vs_backend.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(rows) == 2
    with open(tmp_path / "eval" / "results.csv") as f:
        table = list(csv.DictReader(f))
    saved = json.loads(next((tmp_path / "eval" / "units").glob("*/result.json")).read_text())
    row = next(r for r in table if r["kd"] == str(saved["kd"]))
    for key in ("f1_macro_exact", "readout_mean_abs_error", "prediction_agreement"):
        assert float(row[key]) == float(f"{saved[key]:.6g}")


def test_figure_has_a_panel_per_kd_setting_and_a_row_per_student():
    summary = [{"model": m, "kd": kd, "seeds": 3, "f1_exact_mean": 0.95, "f1_exact_std": 0.01,
                "f1_backend_mean": 0.4, "f1_backend_std": 0.05} for m in ("q2", "hea", "q5") for kd in (False, True)]
    fig = exact_vs_backend_figure(summary, "aer-fake-sherbrooke")
    assert [ax.get_title() for ax in fig.axes] == ["without KD", "with KD"]
    assert sorted(t.get_text() for t in fig.axes[0].get_yticklabels()) == ["hea", "q2", "q5"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["exact", "aer-fake-sherbrooke"]
