import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
