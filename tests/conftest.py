import os
import sys
from pathlib import Path

# One torch/OpenMP thread in the test process and every `qkd` subprocess it starts (inherited), set
# before torch is imported. The tests' tensors are small; on a busy machine, idle OpenMP threads
# spin-waiting for cores cost ~10x the CPU time (quick reproduce: 206 s of CPU with 2 threads, 18 s
# with 1). A developer can still override it from the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

HANG_GUARD_S = 1800
"""Timeout of a test's subprocess: only a guard against a hang, never a speed requirement (a busy
machine may be many times slower than a quiet one)."""


@pytest.fixture
def small_config_dict():
    """A quick XOR config: 3 seeds, few epochs, teacher + linear student with and without KD."""
    return {
        "name": "small",
        "data": {"name": "xor", "n_samples": 200, "n_bits": 16, "seed": 1},
        "seeds": 3,
        "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 40, "patience": 10}},
        "students": [{"model": "linear", "kd": [False, True]}],
        "student_train": {"lr": 0.1, "max_epochs": 20, "patience": 5, "batch_size": 16},
    }


def qkd_cmd(*args: str) -> list[str]:
    """The installed console script, run with this interpreter."""
    return [sys.executable, "-m", "qkd_qiskit.cli", *args]


@pytest.fixture
def small_batch():
    """``make(student, n=6, seed=0) -> (weights, angles)``: random weights and N binary-ish inputs."""
    def make(student, n=6, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 2, (n, student.n_features)).astype(float) + 0.05
        return rng.uniform(0, 2 * np.pi, len(student.weight_params)), np.asarray(student.input_angles(x))
    return make


TINY_Q2 = {
    "name": "tiny_q2",
    "data": {"name": "xor", "n_samples": 60, "n_bits": 8, "seed": 0},
    "seeds": 1,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
    "students": [{"model": "q2", "kd": [False, True], "options": {"layers": 1}}],
    "student_train": {"lr": 0.1, "max_epochs": 2, "patience": 2, "batch_size": 16},
}


def train_run(tmp_path_factory, config: dict) -> Path:
    """Train ``config`` (a config mapping) into a fresh folder named after it; return the run folder."""
    from qkd_qiskit.config import parse_config
    from qkd_qiskit.experiments import run_experiment

    out = tmp_path_factory.mktemp("runs") / config["name"]
    run_experiment(parse_config(config), out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_q2_run(tmp_path_factory):
    """A tiny trained run (one seed of q2, KD on and off) shared read-only by output tests."""
    return train_run(tmp_path_factory, TINY_Q2)
