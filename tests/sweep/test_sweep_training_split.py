"""data.n_train and data.label_noise change the training split only; the teacher gets the full or
the reduced split. Checked with plain numpy against labels recomputed from the XOR bits."""

import numpy as np
import pytest
from scipy.stats import binomtest

from qkd_qiskit.config import parse_config
from qkd_qiskit.experiments import run_datasets


def _cfg(**data):
    return parse_config({"name": "d", "students": [{"model": "linear"}],
                         "data": {"name": "xor", "n_samples": 1000, "n_bits": 32, "seed": 3, **data}})


def _xor(x):
    """The task's rule by hand: bits 00/11 -> 0, 01 -> 1, 10 -> 2."""
    b0, b1 = x[:, 0].astype(int), x[:, 1].astype(int)
    return np.select([b0 == b1, b0 == 0], [0, 1], 2)


def _rows(a):
    return {tuple(r) for r in a.astype(int)}


@pytest.mark.parametrize("teacher_data", ["full", "reduced"])
def test_subset_and_noise_touch_the_training_split_only(teacher_data):
    plain, _ = run_datasets(_cfg())
    student, teacher = run_datasets(_cfg(n_train=100, label_noise=0.2, teacher_data=teacher_data))
    for split in ("val", "test"):  # the same samples and clean labels as without the options
        for a, b in zip(plain.split(split), student.split(split)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(student.split(split)[1], _xor(student.split(split)[0]))
    x, y = student.x_train, student.y_train
    assert len(y) == 100 and _rows(x) <= _rows(plain.x_train)
    idx = [int(np.flatnonzero((plain.x_train == row).all(1))[0]) for row in x]
    assert len(set(idx)) == 100  # drawn without replacement
    # stratified by the true class: 100 * share of each class, within rounding
    share = np.bincount(_xor(plain.x_train), minlength=3) / len(plain.y_train)
    assert np.all(np.abs(np.bincount(_xor(x), minlength=3) - 100 * share) <= 1)
    if teacher_data == "reduced":
        np.testing.assert_array_equal(teacher.x_train, x)
        np.testing.assert_array_equal(teacher.y_train, y)
    else:  # the whole training split, with the same (noisy) label for the samples the student has
        np.testing.assert_array_equal(teacher.x_train, plain.x_train)
        np.testing.assert_array_equal(teacher.y_train[idx], y)


def test_label_noise_rate_and_symmetry():
    plain, _ = run_datasets(_cfg())
    noisy, _ = run_datasets(_cfg(label_noise=0.3))
    clean = _xor(noisy.x_train)
    np.testing.assert_array_equal(noisy.x_train, plain.x_train)
    flipped = noisy.y_train != clean
    assert binomtest(int(flipped.sum()), len(clean), 0.3).pvalue > 1e-3  # rate p (800 labels)
    # a flipped label goes to each of the two other classes about equally often
    assert binomtest(int(((clean + 1) % 3 == noisy.y_train)[flipped].sum()), int(flipped.sum()), 0.5).pvalue > 1e-3
    more, _ = run_datasets(_cfg(label_noise=0.5))
    assert np.all((more.y_train != clean)[flipped])  # a higher rate flips a superset
    np.testing.assert_array_equal(noisy.y_val, plain.y_val)
    np.testing.assert_array_equal(noisy.y_test, plain.y_test)


def test_defaults_leave_dumps_unchanged():
    """Older manifests (without the new keys) still equal the config, so their runs resume."""
    dumped = _cfg().model_dump(mode="json")["data"]
    assert set(dumped) == {"name", "n_samples", "n_bits", "seed", "split"}
    assert _cfg(n_train=10).model_dump(mode="json")["data"]["n_train"] == 10
