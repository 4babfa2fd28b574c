"""What `qkd run` tells a person: a finished run is not silently re-written, CSV tables are rounded
for reading while result.json (which every later computation reads) keeps full precision."""

from __future__ import annotations

import csv
import json
import subprocess

import yaml
from conftest import qkd_cmd

from qkd_qiskit.atomic import atomic_write_csv
from qkd_qiskit.config import parse_config
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.report import write_report
from qkd_qiskit.rundir import RunDir


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "." in text else len(mantissa)


def test_rerun_of_a_finished_run_says_so_and_rewrites_nothing(tmp_path, small_config_dict):
    cfg = parse_config(small_config_dict)
    out = tmp_path / "run"
    run_experiment(cfg, out, progress=False)
    def stamps():  # every file of the run (the lock file of a running `qkd run` aside)
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}

    before = stamps()
    lines: list[str] = []
    rows = run_experiment(cfg, out, progress=False, log=lines.append)
    assert lines == [f"all 9 units already finished in {out}; nothing to train"]
    assert len(rows) == 9
    assert stamps() == before and len(before) >= 9 * 3 + 2


def test_qkd_run_points_to_the_report_and_a_rerun_says_nothing_to_train(tmp_path, small_config_dict):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(small_config_dict))
    out = tmp_path / "run"
    first = subprocess.run(qkd_cmd("run", str(config), "--out", str(out)), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith(f"next: qkd report {out}")
    again = subprocess.run(qkd_cmd("run", str(config), "--out", str(out)), capture_output=True, text=True)
    assert again.returncode == 0 and "all 9 units already finished" in again.stdout
    assert "nothing to train" in again.stdout and f"next: qkd report {out}" in again.stdout


def test_csv_floats_are_rounded_and_result_json_keeps_full_precision(tmp_path, small_config_dict):
    out = tmp_path / "run"
    run_experiment(parse_config(small_config_dict), out, progress=False)
    write_report(out)
    run = RunDir(out)
    for name in ("results.csv", "summary.csv", "kd_tests.csv"):
        with open(out / name) as f:
            for row in csv.DictReader(f):
                for value in row.values():
                    try:
                        float(value)
                    except ValueError:
                        continue
                    assert _significant_digits(value) <= 6, (name, value)
    # result.json is full precision, and it (not the CSV) is what RunDir.results() returns
    unit = next(p for p in (out / "units").glob("linear-kd-*/result.json"))
    saved = json.loads(unit.read_text())
    assert any(isinstance(v, float) and _significant_digits(repr(v)) > 6 for v in saved.values())
    by_key = {(r["model"], r["role"], r["kd"], r["seed"]): r for r in run.results()}
    assert by_key[(saved["model"], saved["role"], saved["kd"], saved["seed"])] == saved
    with open(out / "results.csv") as f:
        table = {(r["model"], r["seed"], r["kd"]): r for r in csv.DictReader(f)}
    cell = table[(saved["model"], str(saved["seed"]), str(saved["kd"]))]["best_val_loss"]
    assert float(cell) == float(f"{saved['best_val_loss']:.6g}")
    # the learning curve keeps full precision too (its only record)
    with open(unit.parent / "history.csv") as f:
        assert any(_significant_digits(r["val_loss"]) > 6 for r in csv.DictReader(f))


def test_atomic_write_csv_rounding(tmp_path):
    path = tmp_path / "t.csv"
    atomic_write_csv(path, [{"a": 0.9925925925925926, "b": 1.0, "c": 3, "d": True, "e": 1.234567e-7,
                             "f": [0.5, 1], "g": float("nan")}], list("abcdefg"))
    assert path.read_text().splitlines()[1] == '0.992593,1.0,3,True,1.23457e-07,"[0.5, 1]",nan'
    atomic_write_csv(path, [{"a": 0.9925925925925926}], ["a"], significant=None)
    assert path.read_text().splitlines()[1] == "0.9925925925925926"
