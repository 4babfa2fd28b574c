import numpy as np
import pytest

from qkd_qiskit.data import load_dataset, make_xor, xor_labels


def test_xor_labelling_rule_by_hand():
    bits = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 0]])
    assert xor_labels(bits).tolist() == [0, 0, 1, 2]


def test_labels_depend_only_on_first_two_bits():
    x, y = make_xor(500, 64, seed=3)
    expected = np.select([x[:, 0] == x[:, 1], x[:, 0] == 0], [0, 1], 2)
    assert (y == expected).all()
    assert set(np.unique(x)) == {0.0, 1.0}


def test_class_balance_is_half_quarter_quarter():
    _, y = make_xor(20000, 64, seed=0)
    freq = np.bincount(y, minlength=3) / len(y)
    # binomial std at n=20000 is < 0.004; 0.015 is > 3.5 sigma
    assert abs(freq[0] - 0.5) < 0.015 and abs(freq[1] - 0.25) < 0.015 and abs(freq[2] - 0.25) < 0.015


def test_split_80_10_10_seeded_and_disjoint():
    a = load_dataset("xor", n_samples=1000, n_bits=64, seed=5)
    b = load_dataset("xor", n_samples=1000, n_bits=64, seed=5)
    c = load_dataset("xor", n_samples=1000, n_bits=64, seed=6)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (800, 100, 100)
    assert np.array_equal(a.x_test, b.x_test) and not np.array_equal(a.x_test, c.x_test)
    assert (a.n_features, a.n_classes, a.class_names) == (64, 3, ("zero", "one", "two"))
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="data.name: unknown dataset 'mnistx'"):
        load_dataset("mnistx")
