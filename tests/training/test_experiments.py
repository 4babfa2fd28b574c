import csv
import json
import signal
import subprocess
import sys

import numpy as np
import yaml
from conftest import HANG_GUARD_S, qkd_cmd

from qkd_qiskit.config import parse_config
from qkd_qiskit.data import load_dataset
from qkd_qiskit.distill import classification_metrics, predict_logits
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.rundir import RESULT_COLUMNS, RunDir, plan_units
from qkd_qiskit.trained import load_trained


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_run_writes_results_manifest_history_and_checkpoints(tmp_path, small_config_dict):
    cfg = parse_config(small_config_dict)
    rows = run_experiment(cfg, tmp_path, progress=False)
    assert len(rows) == 9  # teacher + linear x {kd off, on}, 3 seeds each
    table = read_csv(tmp_path / "results.csv")
    assert list(table[0]) == RESULT_COLUMNS and len(table) == 9
    assert {(r["model"], r["kd"]) for r in table} == {("teacher_mlp", "False"), ("linear", "False"), ("linear", "True")}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["name"] == "small" and manifest["finished_at"] and manifest["versions"]["qiskit"]
    run = RunDir(tmp_path)
    for unit in plan_units(cfg):
        hist = read_csv(run.unit_dir(unit) / "history.csv")
        res = json.loads((run.unit_dir(unit) / "result.json").read_text())
        assert len(hist) == res["epochs_trained"] and 1 <= res["best_epoch"] <= res["epochs_trained"]
    # the checkpoint reproduces the reported test metrics (independent re-evaluation)
    data = load_dataset("xor", **cfg.data.loader_options())
    students = [u for u in plan_units(cfg) if u.model == "linear" and u.kd]
    net = load_trained(run, students, cfg, data, {})
    preds = predict_logits(net, data.x_test).argmax(-1).numpy()
    for m, unit in enumerate(students):
        saved = json.loads((run.unit_dir(unit) / "result.json").read_text())
        assert classification_metrics(data.y_test, preds[m], 3)["f1_macro"] == saved["f1_macro"]


def test_same_seed_gives_identical_metrics(tmp_path, small_config_dict):
    cfg = parse_config({**small_config_dict, "seeds": [2]})
    a = run_experiment(cfg, tmp_path / "a", progress=False)
    b = run_experiment(cfg, tmp_path / "b", progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert strip(a) == strip(b)
    # and a seed's result does not depend on which other seeds share its batch
    c = run_experiment(parse_config({**small_config_dict, "seeds": [0, 2]}), tmp_path / "c", progress=False)
    c2 = [r for r in strip(c) if r["seed"] == 2]
    for ra, rc in zip(strip(a), c2):
        assert ra["f1_macro"] == rc["f1_macro"] and ra["best_epoch"] == rc["best_epoch"]


KILL_AT_13TH_RESULT = """
import os, signal, sys
real_replace = os.replace
results = []


def replace(src, dst, *args, **kwargs):
    # the 13th result.json is the first unit of the third group: its checkpoint is on disk and its
    # result.json only as a temporary file when the process dies (deterministic, no timing)
    if str(dst).endswith("result.json"):
        results.append(dst)
        if len(results) == 13:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)


os.replace = replace
from qkd_qiskit.cli import app
app(sys.argv[1:], prog_name="qkd")
"""


def test_resume_after_kill_skips_finished_units_without_duplicates(tmp_path, small_config_dict):
    conf = {**small_config_dict, "seeds": 4,
            "students": [{"model": "linear", "kd": [False, True], "train": {"max_epochs": 10}},
                         {"model": "teacher_mlp", "kd": [False, True]}],
            "student_train": {"lr": 0.05, "max_epochs": 10, "patience": 10, "batch_size": 16}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(conf))
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILL_AT_13TH_RESULT, "run", str(path), "--out", str(out),
                             "--no-progress"], capture_output=True, timeout=HANG_GUARD_S)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("units/*/result.json")}
    assert len(finished) == 12  # teachers and the linear students; the third group was mid-write
    half = [d for d in out.glob("units/*") if not (d / "result.json").exists()]
    assert len(half) == 1 and (half[0] / "checkpoint.pt").is_file() and list(half[0].glob(".result.json.*.tmp"))
    partial = read_csv(out / "results.csv")
    assert len(partial) == 12 == len({(r["role"], r["model"], r["kd"], r["seed"]) for r in partial})  # whole rows
    # the killed process's lock died with it: resuming is not blocked
    subprocess.run(qkd_cmd("run", str(path), "--out", str(out), "--no-progress"), check=True, capture_output=True,
                   timeout=HANG_GUARD_S)
    rows = read_csv(out / "results.csv")
    assert len(rows) == 20 and len({(r["role"], r["model"], r["kd"], r["seed"]) for r in rows}) == 20
    for name, mtime in finished.items():  # finished units were not recomputed
        assert (out / "units" / name / "result.json").stat().st_mtime_ns == mtime
    assert (half[0] / "result.json").is_file() and not list(out.rglob("*.tmp"))  # temporary files cleaned up
    assert len(json.loads((out / "manifest.json").read_text())["resumed_at"]) == 1


def test_teacher_is_accurate_on_xor(tmp_path):
    cfg = parse_config({"name": "t", "seeds": 2, "students": [{"model": "linear", "kd": [True]}],
                        "teacher": {"train": {"lr": 0.01, "max_epochs": 60, "patience": 50}},
                        "student_train": {"max_epochs": 5}})
    rows = run_experiment(cfg, tmp_path, progress=False)
    assert all(r["f1_macro"] >= 0.95 for r in rows if r["role"] == "teacher")
    assert np.isfinite([r["f1_macro"] for r in rows]).all()
