"""A `sweep:` section expands into the product of its value lists, each point a validated config; a
bad point is one line naming the point and the field, exit code 2, before anything trains."""

import pytest
import yaml
from typer.testing import CliRunner

from qkd_qiskit.cli import app
from qkd_qiskit.config import ConfigError
from qkd_qiskit.rundir import RESULT_COLUMNS
from qkd_qiskit.sweep import expand


def _raw(sweep):
    return {"name": "s", "students": [{"model": "linear"}, {"model": "hea", "options": {"qubits": 3}}],
            "sweep": sweep}


def test_grid_is_the_product_in_the_order_written():
    grid = {"data.n_train": [25, 50, 100], "kd.temperature": [1.0, 4.0], "students.hea.options.layers": [1, 2]}
    sw = expand(_raw(grid))
    assert len(sw.points) == 3 * 2 * 2
    expected = [(n, t, la) for n in (25, 50, 100) for t in (1.0, 4.0) for la in (1, 2)]  # the last varies fastest
    got = [(p.config.data.n_train, p.config.kd.temperature, p.config.students[1].options["layers"]) for p in sw.points]
    assert got == expected
    assert sw.points[5].name == "n_train=50,temperature=1,layers=2"
    assert sw.points[5].values == {"data.n_train": 50, "kd.temperature": 1.0, "students.hea.options.layers": 2}
    assert sw.points[5].config.students[1].options == {"qubits": 3, "layers": 2}  # other options kept
    assert sw.points[0].config.students[0].options == {}  # the other student untouched
    assert sw.columns == ["point", "data.n_train", "kd.temperature", "students.hea.options.layers", *RESULT_COLUMNS]


def test_student_by_index_and_ambiguous_short_names():
    sw = expand(_raw({"students.0.kd": [[True]], "students.1.options.layers": [1], "students.1.kd": [[False]]}))
    p = sw.points[0]
    assert p.config.students[0].kd == [True] and p.config.students[1].kd == [False]
    assert p.name == "0.kd=#0,layers=1,1.kd=#0"  # shortest unique suffixes; lists named by index


@pytest.mark.parametrize("sweep, message", [
    ({"data.n_train": [25, 1]}, "s: sweep point n_train=1: data.n_train: Input should be greater than or equal to 2"),
    ({"kd.temperatur": [1.0]}, "s: sweep point temperatur=1: kd.temperatur: unknown key"),
    ({"students.q9.options.layers": [1]}, "s: sweep.students.q9.options.layers: no entry 'q9'"),
    ({"kd.temperature": []}, "s: sweep.kd.temperature: must be a non-empty list of values"),
    ({"kd.temperature": [1, 1.0]}, "s: sweep: two points are both named temperature=1 (repeated values?)"),
])
def test_bad_points_are_one_line_naming_point_and_field(sweep, message):
    with pytest.raises(ConfigError) as err:
        expand(_raw(sweep), "s")
    assert str(err.value).startswith(message)


def test_cli_refuses_a_bad_point_before_training(tmp_path):
    """data.n_train beyond the training split is known only once the data is loaded: still before
    any point trains, one line naming the point and the field, exit code 2."""
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({"name": "s", "data": {"name": "xor", "n_samples": 100, "n_bits": 8},
                                   "seeds": 1, "students": [{"model": "linear"}],
                                   "sweep": {"data.n_train": [20, 90]}}))
    res = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out")], prog_name="qkd")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert res.stderr == ("error: sweep point n_train=90: data.n_train: 90 is outside 3..80 (the classes and the "
                          "size of the xor training split)\n")
    assert not (tmp_path / "out" / "points").exists()  # nothing trained, not even the good point


def test_cli_runs_a_sweep_into_points(tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({"name": "s", "data": {"name": "xor", "n_samples": 60, "n_bits": 8}, "seeds": 1,
                                   "teacher": {"train": {"max_epochs": 2, "patience": 2}},
                                   "students": [{"model": "linear", "kd": [True]}],
                                   "student_train": {"max_epochs": 2, "patience": 2},
                                   "sweep": {"data.label_noise": [0.0, 0.5]}}))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), "--no-progress"], prog_name="qkd")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "points").iterdir()) == ["label_noise=0", "label_noise=0.5"]
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].startswith("point,data.label_noise,model,role,kd,seed,f1_macro") and len(lines) == 1 + 2 * 2
    assert f"{out / 'results.csv'}: 4 rows from 2 points" in res.stdout
