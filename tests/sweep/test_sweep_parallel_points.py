"""A sweep on worker processes runs several points at once: every sub-run and the combined
results.csv hold the bits of the sequential in-process sweep, and the points that copy a unit
(teacher across temperatures) still copy it instead of training it again."""

import csv

import torch

from qkd_qiskit.executors import LocalExecutor
from qkd_qiskit.sweep import expand, run_sweep

SWEEP = {"name": "par", "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 3, "teacher_data": "reduced"},
         "seeds": 2, "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 3, "patience": 3}},
         "students": [{"model": "linear"}, {"model": "q2", "options": {"qubits": 3, "layers": 1}}],
         "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
         "sweep": {"data.n_train": [20, 40], "kd.temperature": [1.0, 4.0]}}


class Counting(LocalExecutor):
    """The local executor, counting the chunks it trains."""

    def __init__(self, workers):
        super().__init__(workers=workers)
        self.names = []

    def run(self, tasks):
        self.names += [t.name for t in tasks]
        return super().run(tasks)


def _table(out):
    with open(out / "results.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in csv.DictReader(f)]


def test_points_at_once_give_the_sequential_bits(tmp_path):
    sweep = expand(SWEEP)
    one, two = Counting(1), Counting(2)
    run_sweep(sweep, tmp_path / "one", progress=False, executor=one)
    log = []
    try:
        run_sweep(sweep, tmp_path / "two", progress=False, log=log.append, executor=two)
    finally:
        two.close()
    assert sorted(one.names) == sorted(two.names) and len(one.names) == 2 + 4 * 2  # 2 teachers, 2 students x 4 points
    assert _table(tmp_path / "one") == _table(tmp_path / "two") and len(_table(tmp_path / "one")) == 4 * 10
    for ckpt in (tmp_path / "one" / "points").glob("*/units/*/checkpoint.pt"):
        mine = torch.load(ckpt)["state"]
        theirs = torch.load(tmp_path / "two" / ckpt.relative_to(tmp_path / "one"))["state"]
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), ckpt
    assert sum("units reused" in line for line in log) == 2  # temperature=4 copies its teacher (and KD-off units)
