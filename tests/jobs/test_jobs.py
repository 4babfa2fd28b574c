"""`qkd submit` / `qkd collect` in IBM Runtime local testing mode: ids recorded first, crash-safe."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S, train_run

from qkd_qiskit import jobs
from qkd_qiskit.backends import IBMRuntimeBackend, get_backend
from qkd_qiskit.trained import load_run, quantum_groups

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-FAKE-0123456789-do-not-leak"
TINY = {
    "name": "tiny_jobs",
    "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
    "seeds": 1,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 10, "patience": 5}},
    "students": [{"model": "q2", "kd": [False, True], "options": {"layers": 2}},
                 {"model": "hea", "kd": [True], "options": {"layers": 1}}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}
KEYS = {"q2-nokd-seed0", "q2-kd-seed0", "hea-kd-seed0"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_run(tmp_path_factory, TINY)


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run (tests write jobs/ into it)."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "local-manila.yaml"  # local testing mode on a small device: same code path, quick
    path.write_text("kind: ibm\ndevice: fake_manila\nmode: batch\nshots: 256\nseed: 7\n")
    return path


def cli(*args, env=None, timeout=HANG_GUARD_S):
    return subprocess.run([sys.executable, "-m", "qkd_qiskit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def ledger(run, name="local-manila"):
    return json.loads((run / "jobs" / name / "jobs.json").read_text())


def test_dry_run_submits_nothing(run, profile):
    proc = cli("submit", run, "--backend", profile, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "depth=" in proc.stdout and "2q=" in proc.stdout and "est_qpu=" in proc.stdout
    assert "nothing submitted" in proc.stdout and not (run / "jobs").exists()
    lines = []
    rows = jobs.dry_run(run, "ibm-example", log=lines.append)  # real device: its fake snapshot, no network
    assert "snapshot fake_torino of ibm_torino" in lines[0] and sum(r["jobs"] for r in rows) == 3
    assert all(r["qpu_seconds"] > 0 and r["two_qubit_gates"] > 0 for r in rows)
    assert all(0 < r["estimated_success"] < 1 for r in rows) and "est_success=" in lines[1]


def test_submit_crash_collect_round_trip_without_leaking_token(run, profile):
    env = {**os.environ, "QISKIT_IBM_TOKEN": TOKEN}
    crash = ("import os, qkd_qiskit.jobs.runner as j; j._after_record = lambda ledger: os._exit(17); "
             f"j.submit_jobs({str(run)!r}, {str(profile)!r})")
    procs = [subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, cwd=ROOT, env=env)]
    assert procs[0].returncode == 17
    first = ledger(run)["jobs"]
    (key, rec), = first.items()  # the id was on disk before the process died
    assert rec["status"] == "submitted" and not (run / "jobs" / "local-manila" / "results").exists()

    procs.append(cli("collect", run, "--backend", profile, env=env))  # a fresh process resumes
    assert procs[-1].returncode == 0, procs[-1].stderr
    assert "died with its process; rerunning" in procs[-1].stdout and "not_submitted: 2" in procs[-1].stdout
    rec = ledger(run)["jobs"][key]
    assert rec["status"] == "done" and rec["previous"][0] == {"job_id": first[key]["job_id"], "status": "lost",
                                                              "error": None}

    procs.append(cli("submit", run, "--backend", profile, env=env))
    assert procs[-1].returncode == 0 and "2 job(s) submitted" in procs[-1].stdout
    procs.append(cli("collect", run, env=env))
    assert procs[-1].returncode == 0 and "done: 3" in procs[-1].stdout
    book = ledger(run)["jobs"]
    assert set(book) == KEYS and all((run / "jobs/local-manila/results" / f"{r['job_id']}.json").is_file()
                                     for r in book.values())
    with open(run / "jobs" / "local-manila" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    with open(run / "results.csv") as f:  # the exact column reproduces the training run's test scores
        trained = {(r["model"], r["kd"], r["seed"]): float(r["f1_macro"]) for r in csv.DictReader(f)}
    assert len(rows) == 3 and all(float(r["f1_macro_exact"]) == pytest.approx(trained[(r["model"], r["kd"], r["seed"])])
                                  for r in rows)

    # the rerun after the crash is deterministic: same counts as a fresh synchronous run
    backend, led = get_backend(profile), jobs.Ledger(run / "jobs" / "local-manila", ledger(run))
    items = {it.unit.key: it for it in jobs.plan_items(*load_run(run), quantum_groups(*load_run(run)[:2]))}
    it = items[key]
    stored = backend.result_readouts(it.student, led.load_result(key))
    fresh = backend.readouts(it.student, it.weights, jobs.item_angles(it, load_run(run)[2]))
    assert np.array_equal(stored, fresh)

    leaked = [p for p in run.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not leaked and not any(TOKEN in p.stdout + p.stderr for p in procs)


class FailingJob:
    def job_id(self):
        return "failed-job-1"

    def status(self):
        return "ERROR"

    def error_message(self):
        return "Error code 1234: device went offline"

    def result(self):
        raise RuntimeError("job failed")


def test_failed_jobs_are_reported_and_resubmitted(run, profile, monkeypatch):
    real_submit = IBMRuntimeBackend.submit
    calls = []

    def flaky(self, student, weights, angles, mode):
        calls.append(1)
        return FailingJob() if len(calls) == 1 else real_submit(self, student, weights, angles, mode)

    monkeypatch.setattr(IBMRuntimeBackend, "submit", flaky)
    log = []
    jobs.submit_jobs(run, profile, log=log.append)
    book = ledger(run)["jobs"]
    failed = [k for k, r in book.items() if r["status"] == "failed"]
    assert len(failed) == 1 and book[failed[0]]["error"] == "Error code 1234: device went offline"
    rows, report = jobs.collect_jobs(run, log=log.append)
    assert report["failed"] == failed and len(rows) == 2
    assert "--resubmit-failed" in jobs.format_report(report)

    jobs.submit_jobs(run, profile, log=log.append)  # without the flag: reported, not resubmitted
    assert ledger(run)["jobs"][failed[0]]["status"] == "failed" and any("--resubmit-failed" in s for s in log)
    jobs.submit_jobs(run, profile, resubmit_failed=True, log=log.append)
    rec = ledger(run)["jobs"][failed[0]]
    assert rec["status"] == "done" and rec["previous"][0]["job_id"] == "failed-job-1"
    rows, report = jobs.collect_jobs(run, profile, log=log.append)
    assert set(report) == {"done"} and len(rows) == 3


def test_real_device_errors_are_one_line_and_redacted(run, tmp_path):
    home = {**os.environ, "HOME": str(tmp_path)}
    home.pop("QISKIT_IBM_TOKEN", None)
    proc = cli("submit", run, "--backend", "ibm-example", env=home)
    assert proc.returncode == 2 and "no IBM Quantum credentials" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (run / "jobs").exists()
    proc = cli("submit", run, "--backend", "ibm-example", env={**home, "QISKIT_IBM_TOKEN": TOKEN})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert TOKEN not in proc.stdout + proc.stderr and not (run / "jobs").exists()


def test_collect_and_submit_input_errors(run, profile):
    with pytest.raises(ValueError, match="no submitted jobs"):
        jobs.collect_jobs(run)
    with pytest.raises(ValueError, match="submit/collect need an ibm profile"):
        jobs.submit_jobs(run, "aer-fake-torino")


def test_damaged_ledger_and_job_results(run, profile):
    log = []
    jobs.submit_jobs(run, profile, log=log.append)
    folder = run / "jobs" / "local-manila"
    key, rec = sorted(ledger(run)["jobs"].items())[0]
    result = folder / "results" / f"{rec['job_id']}.json"
    result.write_text(result.read_text()[:50])  # truncated: collect fetches (here: reruns) the job again
    rows, report = jobs.collect_jobs(run, log=log.append)
    assert f"{result} is missing or damaged: fetching {key} again" in log
    assert len(rows) == 3 and set(report) == {"done"} and ledger(run)["jobs"][key]["status"] == "done"
    text = (folder / "jobs.json").read_text()
    for damaged, message in [(text[:60], "damaged JSON ("), ("[]", "expected a JSON object, got list"),
                             ('{"jobs": {}}', "not a job ledger (no profile or jobs)")]:
        (folder / "jobs.json").write_text(damaged)
        for call in (lambda: jobs.collect_jobs(run, log=log.append), lambda: jobs.submit_jobs(run, profile)):
            with pytest.raises(ValueError) as err:
                call()
            assert str(err.value).startswith(f"{folder / 'jobs.json'}: {message}") and "\n" not in str(err.value)


def test_collect_reports_calibrated_scores_after_qkd_calibrate(run, profile):
    """Heads calibrated on the same ibm profile (local testing mode) give collect's calibrated column."""
    from qkd_qiskit.calibrate import calibrate_run

    calibrate_run(run, profile, samples=6, val_samples=4, progress=False)
    jobs.submit_jobs(run, profile, log=lambda s: None)
    rows, _ = jobs.collect_jobs(run, profile, log=lambda s: None)
    assert {r["model"] for r in rows} == {"q2", "hea"}
    assert all(r["f1_macro_calibrated"] is not None for r in rows)
    with open(run / "jobs" / "local-manila" / "results.csv") as f:
        assert all(row["f1_macro_calibrated"] != "" for row in csv.DictReader(f))


def test_a_second_process_on_the_same_ledger_stops_before_submitting(run, profile):
    """While one `qkd submit` holds RUN/jobs/<profile>, another submit is one line (exit 2) and
    submits nothing: no job id, no ledger file (it would otherwise submit every unit twice)."""
    from qkd_qiskit.outdir import lock_output_dir

    folder = run / "jobs" / "local-manila"
    with lock_output_dir(folder, option="--backend"):  # another process's lock, as the kernel sees it
        res = cli("submit", run, "--backend", profile)
    assert res.returncode == 2, res.stderr
    line, = res.stderr.strip().splitlines()
    assert "--backend:" in line and "in use by another qkd process" in line and str(folder) in line
    assert not (folder / "jobs.json").exists()
