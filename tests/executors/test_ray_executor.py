"""Training, evaluation and calibration on a real local Ray instance (2 CPUs, started once for this
module) give bitwise the files of the in-process executor; a worker killed mid-task changes nothing.

The oracle is the local executor's run of the same config and chunk size (the issue's definition
of "identical"), and the killed worker is real: the task SIGKILLs its own Ray worker process on its
first attempt, Ray retries it on a fresh worker."""

import csv
import functools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S, ROOT, qkd_cmd

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'qkd-qiskit[test]' or '[ray]')")

import torch  # noqa: E402

from qkd_qiskit.backends import parse_profile  # noqa: E402
from qkd_qiskit.calibrate import calibrate_run  # noqa: E402
from qkd_qiskit.config import parse_config  # noqa: E402
from qkd_qiskit.evaluate import evaluate_run  # noqa: E402
from qkd_qiskit.executors import LocalExecutor, RayExecutor, Task, TasksFailed  # noqa: E402
from qkd_qiskit.executors.ray import WORKER_ENV  # noqa: E402
from qkd_qiskit.experiments import run_experiment  # noqa: E402

CONFIG = {
    "name": "two_models",
    "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 0},
    "seeds": 2,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 6, "patience": 6}},
    "students": [{"model": "linear", "kd": [False, True]},
                 {"model": "q2", "kd": [False, True], "options": {"qubits": 3, "layers": 2}}],
    "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
}
CHUNK = 3  # splits each student's 4 units (kd x seeds) into chunks of 3 and 1


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for this module only; tasks of this test module travel by value."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             runtime_env={"env_vars": WORKER_ENV})  # as RayExecutor's own instance: workers at niceness 0
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    run_experiment(parse_config(CONFIG), out, progress=False, executor=LocalExecutor(CHUNK))
    return out


def unit_files(run: Path) -> dict:
    """Every unit's result (timing aside), checkpoint tensors and history bytes."""
    files = {}
    for d in sorted((run / "units").iterdir()):
        result = json.loads((d / "result.json").read_text())
        result.pop("train_seconds", None)
        result.pop("eval_seconds", None)
        result.pop("calibrate_seconds", None)
        ck = (d / "checkpoint.pt")
        state = torch.load(ck)["state"] if ck.exists() else {}
        history = (d / "history.csv").read_bytes() if (d / "history.csv").exists() else b""
        files[d.name] = (result, {k: v.numpy().tobytes() for k, v in state.items()}, history)
    return files


def kill_first_attempt(marker: str, fn, payload):
    """SIGKILL this worker the first time the task runs (a marker file remembers it), then run it."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    with open(marker + ".runs", "a") as f:
        f.write(f"{os.getpid()}\n")
    return fn(payload)


class KillingExecutor(RayExecutor):
    """Ray, with the first task's first attempt killed mid-task."""

    def __init__(self, marker: Path, **kw):
        super().__init__(**kw)
        self.marker = str(marker)

    def run(self, tasks):
        first = [Task(t.name, functools.partial(kill_first_attempt, self.marker, t.fn), t.payload) for t in tasks[:1]]
        return super().run(first + list(tasks[1:]))


def test_training_on_ray_is_bitwise_the_local_run_even_with_a_killed_worker(cluster, local_run, tmp_path):
    out = tmp_path / "ray"
    ex = KillingExecutor(tmp_path / "killed", chunk_size=CHUNK)
    rows = run_experiment(parse_config(CONFIG), out, progress=False, executor=ex)
    assert (tmp_path / "killed").exists()  # the worker really died once ...
    assert len((tmp_path / "killed.runs").read_text().split()) == 2  # ... and its task ran again (2 phases)
    assert unit_files(out) == unit_files(local_run)
    keys = [(r["model"], r["role"], r["kd"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 + 2 * 4  # nothing lost, nothing duplicated
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["executor"] == "ray" and manifest["executor"]["resources"]["CPU"] == 2
    assert manifest["finished_at"] is not None
    with open(out / "results.csv") as f, open(local_run / "results.csv") as g:
        drop = lambda r: {k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
        assert [drop(r) for r in csv.DictReader(f)] == [drop(r) for r in csv.DictReader(g)]


def test_evaluation_and_calibration_on_ray_match_local(cluster, local_run, tmp_path):
    ex = RayExecutor(chunk_size=1)
    noisy = parse_profile({"kind": "aer", "device": "fake_manila", "shots": 256, "seed": 5})  # 5 qubits: cheap
    here = evaluate_run(local_run, noisy, tmp_path / "eval-local", progress=False, max_samples=6)
    there = evaluate_run(local_run, noisy, tmp_path / "eval-ray", progress=False, max_samples=6, executor=ex)
    assert len(here) == 4 and unit_files(tmp_path / "eval-ray") == unit_files(tmp_path / "eval-local")
    assert [r["f1_macro_backend"] for r in there] == [r["f1_macro_backend"] for r in here]
    manifest = json.loads((tmp_path / "eval-ray" / "manifest.json").read_text())
    assert manifest["executor"]["executor"] == "ray" and manifest["sampling_seeds"] == json.loads(
        (tmp_path / "eval-local" / "manifest.json").read_text())["sampling_seeds"]
    calibrated = calibrate_run(local_run, "statevector", samples=12, val_samples=6, progress=False, executor=ex)
    folder = local_run / "calibration" / "statevector" / "units"
    heads = {p.parent.name: p.read_bytes() for p in folder.glob("*/head.json")}
    for p in folder.iterdir():
        p.joinpath("result.json").unlink()  # calibrate again, locally this time
    local = calibrate_run(local_run, "statevector", samples=12, val_samples=6, progress=False)
    assert len(calibrated) == 4 and heads == {p.parent.name: p.read_bytes() for p in folder.glob("*/head.json")}
    drop = lambda rows: [{k: v for k, v in r.items() if k != "calibrate_seconds"} for r in rows]  # noqa: E731
    assert drop(calibrated) == drop(local)


def test_an_address_where_no_cluster_answers_is_one_line_at_once(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"^--address: no Ray cluster answers at 127.0.0.1:{port} \("):
        run_experiment(parse_config(CONFIG), tmp_path / "out", executor="ray", address=f"127.0.0.1:{port}")
    assert not (tmp_path / "out").exists()


def explode(payload):
    raise RuntimeError(f"no luck with {payload}")


def test_a_task_that_fails_for_good_is_reported_after_the_others(cluster):
    ex = RayExecutor(max_retries=1)
    outcomes = {o.task.name: o for o in ex.run([Task("bad-unit", explode, 7), Task("good-unit", abs, -3)])}
    assert outcomes["good-unit"].result == 3 and outcomes["good-unit"].error is None
    assert outcomes["bad-unit"].error == "RuntimeError: no luck with 7"
    assert "bad-unit: RuntimeError" in str(TasksFailed([outcomes["bad-unit"]]))


def test_cli_run_on_an_existing_cluster_gives_the_local_results(cluster, local_run, tmp_path):
    config = tmp_path / "two_models.yaml"
    config.write_text(json.dumps(CONFIG))  # JSON is YAML
    out = tmp_path / "cli"
    proc = subprocess.run(qkd_cmd("run", str(config), "--out", str(out), "--executor", "ray", "--address", cluster,
                                  "--chunk-size", str(CHUNK), "--no-progress"),
                          capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr
    assert unit_files(out) == unit_files(local_run)
    assert json.loads((out / "manifest.json").read_text())["executor"]["address"] == cluster


def worker_niceness(_payload):
    return os.nice(0)


def test_tasks_run_at_normal_priority(cluster):
    """Ray's default worker niceness (15) starves the tasks on a machine other jobs keep busy."""
    ex = RayExecutor()
    assert [o.result for o in ex.run([Task("nice", worker_niceness, None)])] == [0]
