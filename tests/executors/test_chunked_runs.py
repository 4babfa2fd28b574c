"""Chunks of units on the in-process executor: fixed chunks make a resumed run bitwise the
uninterrupted one, a failing chunk is reported after the others, and the executor options are
checked before any work (no Ray is started here; tests/executors/test_ray_executor.py does that)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import HANG_GUARD_S, ROOT, qkd_cmd

from qkd_qiskit.config import parse_config
from qkd_qiskit.executors import LocalExecutor, Task, TasksFailed
from qkd_qiskit.experiments import run_experiment

CONFIG = {
    "name": "chunks",
    "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 0},
    "seeds": 3,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 6, "patience": 6}},
    "students": [{"model": "linear", "kd": [False, True]},
                 {"model": "q2", "kd": [False, True], "options": {"qubits": 3, "layers": 2}}],
    "student_train": {"lr": 0.1, "max_epochs": 4, "patience": 4, "batch_size": 16},
}


def unit_bytes(run: Path, key: str) -> tuple:
    d = run / "units" / key
    result = json.loads((d / "result.json").read_text())
    result.pop("train_seconds")
    state = torch.load(d / "checkpoint.pt")["state"]
    return result, {k: v.numpy().tobytes() for k, v in state.items()}, (d / "history.csv").read_bytes()


@pytest.fixture(scope="module")
def chunked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chunks") / "run"
    run_experiment(parse_config(CONFIG), out, progress=False, chunk_size=4)
    return out


def test_a_unit_trained_again_on_resume_is_bitwise_the_first_one(chunked_run, tmp_path):
    """q2's 6 units form chunks of 4 and 2; the unit deleted from the first chunk is trained again
    in that same batch of 4, so its files come back bit for bit, and no other unit is re-written."""
    run = tmp_path / "run"
    shutil.copytree(chunked_run, run)
    before = {k: unit_bytes(run, k) for k in ("q2-nokd-seed1", "q2-kd-seed0", "q2-kd-seed2")}
    stamps = {p: p.stat().st_mtime_ns for p in (run / "units").glob("*/result.json")}
    shutil.rmtree(run / "units" / "q2-nokd-seed1")
    rows = run_experiment(parse_config(CONFIG), run, progress=False, chunk_size=4)
    assert len(rows) == 3 + 12 and {k: unit_bytes(run, k) for k in before} == before
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if "q2-nokd-seed1" not in str(p))
    assert json.loads((run / "units" / "q2-nokd-seed1" / "result.json").read_text())["group_size"] == 4


def test_resuming_with_another_chunk_size_is_one_line(chunked_run, tmp_path):
    shutil.copytree(chunked_run, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "units" / "linear-kd-seed2")
    with pytest.raises(ValueError, match=r"^--chunk-size: .* was started with --chunk-size 4 \(not all\)"):
        run_experiment(parse_config(CONFIG), tmp_path / "run", progress=False)


def test_a_model_whose_rows_are_independent_gives_the_same_bits_in_any_chunk(chunked_run, tmp_path):
    """The linear student's maths is row by row, so chunks of 4 and one batch of all 6 agree bit for
    bit (quantum students need not: README, 'Running on a Ray cluster')."""
    cfg = {**CONFIG, "students": CONFIG["students"][:1]}
    run_experiment(parse_config(cfg), tmp_path / "whole", progress=False)
    for key in ("linear-nokd-seed0", "linear-kd-seed2", "teacher_mlp-teacher-seed1"):
        ours, theirs = unit_bytes(tmp_path / "whole", key), unit_bytes(chunked_run, key)
        assert ours[1:] == theirs[1:] and {**ours[0], "group_size": 0} == {**theirs[0], "group_size": 0}


class Sabotaged(LocalExecutor):
    """The in-process executor with the chunk named ``bad`` failing."""

    def __init__(self, bad: str, chunk_size: int):
        super().__init__(chunk_size)
        self.bad = bad

    def run(self, tasks):
        return super().run([Task(t.name, self.boom, t.payload) if t.name.startswith(self.bad) else t for t in tasks])

    @staticmethod
    def boom(payload):
        raise RuntimeError("simulated crash")


def test_a_failing_chunk_is_reported_by_name_after_the_rest_and_resumes(chunked_run, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TasksFailed, match=r"1 task\(s\) failed: linear-nokd-seed0 .. linear-kd-seed0 \(4 units\): "
                                          r"RuntimeError: simulated crash"):
        run_experiment(parse_config(CONFIG), out, progress=False, executor=Sabotaged("linear-nokd-seed0", 4))
    done = sorted(p.name for p in (out / "units").iterdir())
    assert len(done) == 3 + 2 + 6 and "linear-kd-seed1" in done and "linear-nokd-seed0" not in done
    assert json.loads((out / "manifest.json").read_text())["finished_at"] is None
    rows = run_experiment(parse_config(CONFIG), out, progress=False, chunk_size=4)
    assert len(rows) == 15 and unit_bytes(out, "linear-nokd-seed0") == unit_bytes(chunked_run, "linear-nokd-seed0")


@pytest.mark.parametrize("args", [("reproduce", "piperno2024", "--quick", "--out", "OUT"),
                                  ("calibrate", "OUT", "--backend", "statevector")])
def test_executor_ray_without_ray_is_one_line_before_any_work(tmp_path, args):
    hide = tmp_path / "hide" / "ray"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('Ray is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hide")}
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    proc = subprocess.run(qkd_cmd(*argv, "--executor", "ray"), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=HANG_GUARD_S)
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    assert proc.stderr.strip() == 'error: --executor ray needs Ray: pip install "qkd-qiskit[ray]"'
