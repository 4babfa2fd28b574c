import csv
import shutil
import subprocess

import pytest
from conftest import HANG_GUARD_S, qkd_cmd

STUDENTS = ["linear", "hea", "universal", "universal_h", "q2", "q3", "q4", "q5"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "p"
    proc = subprocess.run(qkd_cmd("reproduce", "piperno2024", "--out", str(out), "--quick", "--no-progress"),
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr
    return out


def test_reproduce_piperno_quick_writes_complete_report(quick_run):
    out = quick_run
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 + 3 * 2 * len(STUDENTS)  # teacher + every student x kd, 3 seeds
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert list(summary[0])[:8] == ["model", "kd", "mean_f1", "var_f1", "std_f1", "n_params", "n_seeds", "mean_epochs"]
    by = {(s["model"], s["kd"]): s for s in summary}
    assert {m for m, _ in by} == set(STUDENTS) | {"teacher_mlp (teacher)"}
    assert by[("q2", "True")]["n_params"] == "74" and by[("linear", "False")]["n_params"] == "195"
    for s in summary:  # summary agrees with the per-seed rows it came from
        f1 = [float(r["f1_macro"]) for r in rows if r["model"] == s["model"].split(" ")[0]
              and r["kd"] == s["kd"] and (r["role"] == "teacher") == s["model"].endswith("(teacher)")]
        assert len(f1) == int(s["n_seeds"]) == 3
        assert abs(sum(f1) / 3 - float(s["mean_f1"])) < 2e-6  # both CSVs keep 6 significant digits
    md = (out / "summary.md").read_text()
    assert "Wilcoxon" in md and all(f"| {m} | 3 |" in md for m in STUDENTS) and "missing" not in md
    assert (out / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_partial_run_names_missing_units(quick_run, tmp_path):
    out = tmp_path / "p"
    shutil.copytree(quick_run, out)
    shutil.rmtree(out / "units" / "q3-kd-seed1")
    proc = subprocess.run(qkd_cmd("report", str(out)), capture_output=True, text=True, check=True)
    assert "partial run: 1 unit(s) missing" in proc.stderr
    assert "q3-kd-seed1" in (out / "summary.md").read_text()
