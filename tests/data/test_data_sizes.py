"""Data sizes that leave a split empty are one line naming the config field (not a numpy error)."""

import numpy as np
import pytest

from qkd_qiskit.data import load_dataset


def test_one_image_per_class_names_per_class():
    # the config refuses per_class: 1; the loader also says why, whoever calls it
    with pytest.raises(ValueError) as err:
        load_dataset("digits", classes=[0, 1], per_class=1, seed=0)
    assert str(err.value) == ("data.per_class: class 0 has 1 sample(s) and the validation cut leaves none for "
                              "training (need >= 2 per class)")
    ds = load_dataset("digits", classes=[0, 1], per_class=2, seed=0)
    assert len(ds.x_train) == 2 and len(ds.x_val) == 2


def test_xor_split_leaving_a_split_empty_names_split():
    with pytest.raises(ValueError) as err:
        load_dataset("xor", n_samples=10, n_bits=8, seed=0, split=(0.9, 0.05, 0.05))
    assert str(err.value) == ("data.split: [0.9, 0.05, 0.05] of 10 samples leaves the val split empty "
                              "(more samples or larger fractions)")


def test_stratified_subset_with_a_one_member_class_keeps_every_class():
    """scikit-learn cannot stratify a class of one sample; the hand split keeps each class's share."""
    from qkd_qiskit.data import stratified_subset

    y = np.array([0] * 10 + [1] * 5 + [2])
    for n in (3, 5, 8, 12):
        keep = stratified_subset(y, n, seed=3)
        assert len(keep) == len(set(keep)) == n and set(y[keep]) == {0, 1, 2}
        assert abs(int((y[keep] == 0).sum()) - n * 10 / 16) <= 1.5  # proportional within rounding
