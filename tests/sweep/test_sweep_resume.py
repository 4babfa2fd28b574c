"""A sweep runs each point as a resumable sub-run: an interrupted sweep resumes without touching
finished points, units that would train identically are copied instead of trained, and the combined
results.csv holds every point's rows with the swept fields as columns."""

import csv

import pytest

from qkd_qiskit.experiments import run_experiment
from qkd_qiskit.sweep import expand, run_sweep


def _sweep(teacher_data="reduced"):
    return expand({"name": "r", "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 2,
                                         "teacher_data": teacher_data},
                   "seeds": 2, "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 3, "patience": 3}},
                   "students": [{"model": "linear"}],
                   "student_train": {"lr": 0.1, "max_epochs": 3, "patience": 3, "batch_size": 16},
                   "sweep": {"data.n_train": [20, 40], "kd.temperature": [1.0, 2.0]}})


class Interrupted(Exception):
    pass


def _stamps(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".qkd.lock"}


def test_interrupted_sweep_resumes_and_combines(tmp_path):
    sweep, out = _sweep(), tmp_path / "out"
    calls = []

    def dies_on_third(cfg, path, **kw):
        calls.append(path.name)
        if len(calls) == 3:
            raise Interrupted
        return run_experiment(cfg, path, **kw)

    with pytest.raises(Interrupted):
        run_sweep(sweep, out, progress=False, runner=dies_on_third)
    first = out / "points" / "n_train=20,temperature=1"
    before = _stamps(first)
    log = []
    rows = run_sweep(sweep, out, progress=False, log=log.append)
    assert _stamps(first) == before  # a finished point is neither retrained nor rewritten
    assert "all 6 units already finished" in " ".join(log)
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:3] == ["point", "data.n_train", "kd.temperature"]
    assert len(table) == len(rows) == 4 * 6  # 4 points x (2 teachers + linear x kd on/off x 2 seeds)
    for p in sweep.points:  # every point's own results.csv, plus its swept values
        with open(out / "points" / p.name / "results.csv", newline="") as f:
            own = list(csv.DictReader(f))
        mine = [r for r in table if r["point"] == p.name]
        assert [{k: v for k, v in r.items() if k not in ("point", *sweep.grid)} for r in mine] == own
        assert {(r["data.n_train"], r["kd.temperature"]) for r in mine} == \
            {(str(p.config.data.n_train), str(p.config.kd.temperature))}


@pytest.mark.parametrize("teacher_data, reused", [("reduced", [0, 4, 0, 4]), ("full", [0, 4, 2, 4])])
def test_identical_units_are_copied_not_trained(tmp_path, teacher_data, reused):
    """Across temperatures the teachers (2) and KD-off students (2) are the same; across n_train only
    a teacher on the full split is."""
    log = []
    run_sweep(_sweep(teacher_data), tmp_path, progress=False, log=log.append)
    points = [m for m in log if m.startswith("point ")]
    counts = [int(m.split("(")[1].split()[0]) if "reused" in m else 0 for m in points]
    assert counts == reused
    a, b = (tmp_path / "points" / n / "units" / "teacher_mlp-teacher-seed0" / "checkpoint.pt"
            for n in ("n_train=20,temperature=1", "n_train=40,temperature=1"))
    assert (a.read_bytes() == b.read_bytes()) == (teacher_data == "full")
