"""Model options are checked by the builders: a wrong type or value names ``options.<key>``."""

import pytest
import torch

from qkd_qiskit.models import build_model


def gens(n=1):
    return [torch.Generator().manual_seed(i) for i in range(n)]


@pytest.mark.parametrize("model, options, message", [
    ("q2", {"qubits": "six"}, "options.qubits: must be an integer >= 1, got 'six'"),
    ("q2", {"qubits": 6.0}, "options.qubits: must be an integer >= 1, got 6.0"),
    ("hea", {"layers": 0}, "options.layers: must be an integer >= 1, got 0"),
    ("hea", {"layers": True}, "options.layers: must be an integer >= 1, got True"),
    ("q2", {"head_hidden": "abc"}, "options.head_hidden: must be a list of positive integers, got 'abc'"),
    ("teacher_mlp", {"hidden": [-4]}, "options.hidden: must be a list of positive integers, got [-4]"),
    ("linear", {"hidden": [8, 2.5]}, "options.hidden: must be a list of positive integers, got [8, 2.5]"),
    ("hea", {"gradient": "adam"}, "options.gradient: must be auto, param_shift or spsa, got 'adam'"),
    ("hea", {"backend": 5}, "options.backend: must be a profile name or file, got 5"),
    ("q2", {"layers": 1}, "options: q2 with qubits=6, layers=1: q_nd: measuring 4 qubits needs >= 4 layers"),
    ("hasan", {"encoding": "fourier"}, "options.encoding: must be amplitude, angle or dense_angle, got 'fourier'"),
    ("hasan", {"reduction": ["fc"]}, "options.reduction: must be fc, crop, pool, pca or none, got ['fc']"),
    ("lenet5", {"channels": [6]}, "options.channels: must be 2 positive integers, got [6]"),
])
def test_bad_option_is_one_line_naming_it(model, options, message):
    with pytest.raises(ValueError) as err:
        build_model(model, 64, 3, gens(), **options)
    assert str(err.value) == message


def test_good_options_still_build():
    assert build_model("teacher_mlp", 64, 3, gens(2), hidden=[4]).layers[0].weight.shape == (2, 64, 4)
    assert build_model("q2", 64, 3, gens(), layers=4, head_hidden=[5]).head.layers[0].weight.shape == (1, 4, 5)
