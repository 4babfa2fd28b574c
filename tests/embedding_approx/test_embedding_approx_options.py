"""The student options ``embedding_cx`` and ``readout_norm``: one line naming the option, before any
training (through the run's preflight), and the shipped robust variants build."""

from __future__ import annotations

import pytest

from qkd_qiskit.config import load_config, parse_config
from qkd_qiskit.data import load_dataset
from qkd_qiskit.experiments import preflight
from qkd_qiskit.trained import build_for_units

DATA = {"name": "xor", "n_samples": 40, "n_bits": 8, "seed": 0}


def config(options):
    return parse_config({"name": "opts", "data": DATA, "seeds": 1, "teacher": {"model": "teacher_mlp"},
                         "students": [{"model": "hea", "options": {"layers": 1, **options}}]})


@pytest.mark.parametrize("options, message", [
    ({"embedding_cx": -1}, "students.0.options.embedding_cx: must be an integer >= 0 (CX gates kept of the "
                           "amplitude embedding), got -1"),
    ({"embedding_cx": "few"}, "students.0.options.embedding_cx: must be an integer >= 0"),
    ({"embedding_cx": 7}, "students.0.options.embedding_cx: must be at most 6 (the exact embedding on 3 qubits), got 7"),
    ({"embedding_terms": [0, 1]}, "students.0.options.embedding_terms: only with options.embedding_cx"),
    ({"embedding_cx": 2, "embedding_terms": [0, 1, 2, 3, 4, 5, 6]},
     "students.0.options.embedding_terms: these terms need 6 CX, more than options.embedding_cx = 2"),
    ({"readout_norm": "layer"}, "students.0.options.readout_norm: must be none, batch or affine, got 'layer'"),
    ({"readout_norm": "batch", "backend": "statevector"},
     "students.0.options.backend: readout_norm and embedding_cx are for engine training"),
])
def test_bad_options_are_one_line_naming_the_option(options, message):
    cfg = config(options)
    with pytest.raises(ValueError) as err:
        preflight(cfg, load_dataset("xor", **{k: v for k, v in DATA.items() if k != "name"}))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_shipped_robust_variants_build_with_the_paper_architecture_elsewhere():
    cfg = load_config("configs/piperno2024_xor_robust.yaml")
    data = load_dataset("xor", n_samples=200, n_bits=64, seed=0)
    built = {st.label: build_for_units(cfg, data, st.model, st.options, [0]) for st in cfg.students}
    assert built["hea"].readout_norm is None and built["hea"].student.embedding_terms is None
    assert built["hea_norm"].readout_norm is not None
    approx = built["hea_approx"].student
    assert approx.embedding_terms is not None
    assert approx.circuit.decompose(gates_to_decompose=["mux_ry"]).count_ops()["cx"] < \
        built["hea"].student.circuit.decompose(gates_to_decompose=["mux_ry"]).count_ops()["cx"]
