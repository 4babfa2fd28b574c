"""``--workers N``: worker processes of the local executor. A run on 2 workers writes the bits of
the in-process run (every task seeds its own generators); a task that raises or whose worker dies
fails alone; a killed driver leaves no worker behind; bad values are one line, exit 2."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import HANG_GUARD_S
from typer.testing import CliRunner

from qkd_qiskit.cli import app
from qkd_qiskit.config import parse_config
from qkd_qiskit.executors import LocalExecutor, Task
from qkd_qiskit.experiments import run_experiment

CONFIG = {
    "name": "workers",
    "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 4, "patience": 4}},
    "students": [{"model": "linear", "kd": [False, True]},
                 {"model": "q2", "kd": [False, True], "options": {"qubits": 3, "layers": 1}}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}


def _unit(run: Path, key: str) -> tuple[dict, dict]:
    result = json.loads((run / "units" / key / "result.json").read_text())
    result.pop("train_seconds")
    return result, torch.load(run / "units" / key / "checkpoint.pt")["state"]


def _rows(rows: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k != "train_seconds"} for r in rows), key=str)


def test_two_workers_write_the_bits_of_one(tmp_path):
    cfg = parse_config(CONFIG)
    one = run_experiment(cfg, tmp_path / "one", progress=False, executor=LocalExecutor(workers=1))
    ex = LocalExecutor(workers=2)
    try:
        two = run_experiment(cfg, tmp_path / "two", progress=False, executor=ex)
        assert ex.pool.started == 2  # the students' two chunks ran in two processes
    finally:
        ex.close()
    assert len(one) == 2 + 8 and _rows(one) == _rows(two)
    for key in (p.name for p in (tmp_path / "one" / "units").iterdir()):
        (r1, s1), (r2, s2) = _unit(tmp_path / "one", key), _unit(tmp_path / "two", key)
        assert r1 == r2 and s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1), key
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["executor"]["workers"] == 2 and manifest["executor"]["worker_threads"] == 1


def test_a_failing_task_or_a_dead_worker_fails_alone():
    ex = LocalExecutor(workers=2)
    tasks = [Task("ok", abs, -2), Task("raises", int, "x"), Task("dies", signal.raise_signal, signal.SIGKILL), Task("ok too", abs, 5)]
    try:
        got = {o.task.name: (o.result, o.error) for o in ex.run(tasks)}
        after = sorted(o.result for o in ex.run([Task("a", abs, -7), Task("b", abs, -8)]))
        assert after == [7, 8] and ex.pool.started == 4  # two fresh workers replaced the dead ones
    finally:
        ex.close()
    assert got["ok"] == (2, None) and got["ok too"] == (5, None)
    assert got["raises"][1].startswith("ValueError: invalid literal for int()")
    assert got["dies"][1] == "worker process died (exit code -9)"  # retried once on a fresh worker, died again


def test_a_killed_driver_leaves_no_worker(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text("import os, time\nfrom qkd_qiskit.executors import WorkerPool\n"
                      "def pid(_):\n    return os.getpid()\n"
                      "if __name__ == '__main__':\n"
                      "    pool = WorkerPool(1)\n"
                      "    print(pool.submit(pid, None).result(), flush=True)\n"
                      "    pool.submit(time.sleep, 600).result()\n")
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(driver.stdout.readline())
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + HANG_GUARD_S
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_bad_workers_values_are_one_line_exit_2(tmp_path):
    """Checked before any work, on every command that takes --workers."""
    out = ["--out", str(tmp_path / "r")]
    commands = (["run", "xor_classical", *out], ["reproduce", "piperno2024", *out],
                ["evaluate", str(tmp_path), "--backend", "aer-ideal", *out], ["calibrate", str(tmp_path), "--backend", "aer-ideal"])
    cases = [(c + ["--workers", "0"], "error: --workers: expected a positive number of worker processes, got 0\n")
             for c in commands]
    ray = "error: --workers: only used with --executor local (Ray gives each task a CPU of the cluster)\n"
    cases.append(([*commands[0], "--workers", "2", "--executor", "ray"], ray))
    for args, message in cases:
        res = CliRunner().invoke(app, args, prog_name="qkd")
        assert (res.exit_code, res.stderr) == (2, message), args
    assert not (tmp_path / "r").exists()
