"""`qkd evaluate`: exact vs backend F1 per trained quantum unit, resumable, validated up front."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import train_run

from qkd_qiskit.config import parse_config
from qkd_qiskit.evaluate import EVAL_COLUMNS, evaluate_run, format_summary
from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.rundir import RunDir
from qkd_qiskit.summaries import backend_summary as summarize

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "name": "tiny_quantum",
    "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 10, "patience": 5}},
    "students": [{"model": "q2", "kd": [False, True], "options": {"layers": 2}},
                 {"model": "hea", "kd": [True], "options": {"layers": 1}},
                 {"model": "linear", "kd": [True]}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_run(tmp_path_factory, TINY)


def write_profile(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("device", ["fake_sherbrooke", "fake_torino"])
def test_noisy_evaluation_on_aer_profiles(tiny_run, tmp_path, device):
    profile = write_profile(tmp_path, f"aer-{device}", f"kind: aer\ndevice: {device}\nshots: 512\nseed: 5\n")
    rows = evaluate_run(tiny_run, profile, tmp_path / "eval", progress=False)
    assert len(rows) == 6 and {r["model"] for r in rows} == {"q2", "hea"}  # the linear student is skipped
    trained = {(r["model"], r["kd"], r["seed"]): r["f1_macro"]  # result.json: full precision (the CSV is rounded)
               for r in RunDir(tiny_run).results()}
    for r in rows:
        # exact scores reproduce the training run's test scores; backend scores agree with their own
        # confusion matrix (macro-F1 by hand: 2TP / (2TP + FP + FN) per class)
        assert r["f1_macro_exact"] == pytest.approx(trained[(r["model"], r["kd"], r["seed"])], abs=1e-12)
        cm = np.array(r["confusion_matrix_backend"])
        tp, fp, fn = np.diag(cm), cm.sum(0) - np.diag(cm), cm.sum(1) - np.diag(cm)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        assert r["f1_macro_backend"] == pytest.approx(f1.mean(), abs=1e-12)
        assert 0 < r["readout_mean_abs_error"] < 0.3  # noisy, but not garbage
    table = read_csv(tmp_path / "eval" / "results.csv")
    assert list(table[0]) == EVAL_COLUMNS and len(table) == 6
    summary = read_csv(tmp_path / "eval" / "summary.csv")
    assert {(s["model"], s["kd"]) for s in summary} == {("q2", "False"), ("q2", "True"), ("hea", "True")}
    manifest = json.loads((tmp_path / "eval" / "manifest.json").read_text())
    assert manifest["backend"]["shots"] == 512 and manifest["backend"]["device"] == device
    assert manifest["backend"]["seed"] == 5 and manifest["finished_at"]
    q2 = manifest["transpilation"]["q2"]
    assert q2["depth"] > 0 and q2["two_qubit_gates"] > 0 and len(q2["layout"]) == 3
    assert "f1_exact" in format_summary(summarize(rows))


def test_statevector_profile_reproduces_exact(tiny_run, tmp_path):
    rows = evaluate_run(tiny_run, "statevector", tmp_path / "sv", progress=False)
    assert all(r["f1_macro_backend"] == r["f1_macro_exact"] and r["readout_mean_abs_error"] < 1e-6 for r in rows)
    results = [json.loads(p.read_text()) for p in sorted((tiny_run / "units").glob("q2-*/result.json"))]
    exact = sorted(r["f1_macro_exact"] for r in rows if r["model"] == "q2")
    assert exact == pytest.approx(sorted(r["f1_macro"] for r in results))


def test_evaluation_resumes_and_guards_its_folder(tiny_run, tmp_path):
    profile = write_profile(tmp_path, "aer-t", "kind: aer\ndevice: fake_torino\nshots: 128\n")
    out = tmp_path / "eval"
    evaluate_run(tiny_run, profile, out, progress=False)
    done = out / "units" / "q2-kd-seed0" / "result.json"
    kept = out / "units" / "hea-kd-seed1" / "result.json"
    stamp = kept.stat().st_mtime_ns
    done.unlink()
    rows = evaluate_run(tiny_run, profile, out, progress=False)
    assert len(rows) == 6 and done.is_file() and kept.stat().st_mtime_ns == stamp
    assert len(json.loads((out / "manifest.json").read_text())["resumed_at"]) == 1
    other = write_profile(tmp_path, "aer-s", "kind: aer\ndevice: fake_torino\nshots: 64\n")
    with pytest.raises(ValueError, match="another run, backend profile or test subset"):
        evaluate_run(tiny_run, other, out, progress=False)


def test_cli_errors_are_one_line_and_nothing_runs(tiny_run, tmp_path):
    tiny = write_profile(tmp_path, "tiny-device", "kind: aer\ndevice: fake_armonk\n")  # a 1-qubit device
    bad = write_profile(tmp_path, "bad", "kind: aer\ndevice: fake_sherbrooke\nshots: 0\n")
    for profile, expected in [(tiny, "fake_armonk has 1 qubit, the q2 student needs 3"),
                              (bad, "shots: Input should be greater than 0")]:
        out = tmp_path / f"out-{profile.stem}"
        proc = subprocess.run([sys.executable, "-m", "qkd_qiskit.cli", "evaluate", str(tiny_run), "--backend",
                               str(profile), "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and expected in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_run_without_quantum_students(tmp_path):
    cfg = {**TINY, "seeds": 1, "students": [{"model": "linear", "kd": [False]}],
           "teacher": {"model": "teacher_mlp", "train": {"max_epochs": 2}}}
    run_experiment(parse_config(cfg), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="no trained quantum student"):
        evaluate_run(tmp_path / "run", "statevector", tmp_path / "out", progress=False)


def test_evaluation_output_folder_is_checked_and_locked(tiny_run, tmp_path):
    from qkd_qiskit.outdir import OutputDirError, lock_output_dir

    (tmp_path / "file").write_text("x")
    for out, error, message in [(tmp_path / "file", OutputDirError, "file is a file, not a folder"),
                                (tiny_run, ValueError, "is the run folder itself; choose another --out")]:
        with pytest.raises(error, match=message):
            evaluate_run(tiny_run, "statevector", out, progress=False)
    other_run = tmp_path / "other"
    other_run.mkdir()
    (other_run / "manifest.json").write_text(json.dumps({"config": {"name": "x"}}))
    with pytest.raises(ValueError, match=r"is a `qkd run` folder; choose another --out"):
        evaluate_run(tiny_run, "statevector", other_run, progress=False)
    busy = tmp_path / "busy"
    with lock_output_dir(busy):
        with pytest.raises(OutputDirError, match="is in use by another qkd process"):
            evaluate_run(tiny_run, "statevector", busy, progress=False)
    assert [p.name for p in busy.iterdir()] == [".qkd.lock"]


def test_damaged_evaluation_units_are_evaluated_again(tiny_run, tmp_path):
    out = tmp_path / "sv"
    evaluate_run(tiny_run, "statevector", out, progress=False)
    damaged = out / "units" / "q2-kd-seed1" / "result.json"
    damaged.write_text(damaged.read_text()[:40])
    (out / "units" / "hea-kd-seed0" / ".result.json.999999999.abc.tmp").write_text("half")  # a killed writer's
    log = []
    rows = evaluate_run(tiny_run, "statevector", out, progress=False, log=log.append)
    assert len(rows) == 6 and json.loads(damaged.read_text())["model"] == "q2"
    assert [line for line in log if "again" in line] == [f"{damaged} is damaged (not a JSON object with model, role, "
                                                         "kd, seed, f1_macro_exact, f1_macro_backend): evaluating "
                                                         "q2-kd-seed1 again"]
    assert not list(out.rglob("*.tmp"))


def test_noise_model_file_that_is_not_json_is_one_line(tiny_run, tmp_path):
    (tmp_path / "noise.json").write_text("<html>not json</html>")
    profile = write_profile(tmp_path, "aer-file", "kind: aer\nnoise_model: noise.json\n")
    with pytest.raises(ValueError) as err:
        evaluate_run(tiny_run, profile, tmp_path / "out", progress=False)
    assert str(err.value).startswith(f"{tmp_path / 'noise.json'}: damaged JSON (Expecting value: line 1 column 1)")
    assert not (tmp_path / "out").exists()
