"""The training split a run actually trains on: fewer samples, noisy labels, and the teacher's share.

Three options change the *training* split only (validation and test are never touched, so every
run is scored on the same samples):

- ``n_train``: a seeded, class-stratified subset of that many training samples
  (:func:`~qkd_qiskit.data.subsets.stratified_subset`, stratified by the true labels);
- ``label_noise`` ``p``: symmetric label noise: each training label, independently with
  probability ``p``, is replaced by one of the *other* classes chosen uniformly at random. The noise
  is drawn once for the whole training split (seeded by ``seed``), then the subset is taken, so a
  teacher on the full split and a student on the subset see the same label for a shared sample, and
  a higher ``p`` flips a superset of the labels a lower one flips (same random numbers);
- ``teacher_data``: ``"full"`` (the teacher trains on the whole, noisy, training split) or
  ``"reduced"`` (on the student's subset).

Written by hand (a few lines of numpy): scikit-learn has no label-noise helper.

Example:
    >>> from qkd_qiskit.data import load_dataset
    >>> full = load_dataset("xor", n_samples=1000, n_bits=8, seed=0)
    >>> student, teacher = training_datasets(full, n_train=50, label_noise=0.2, teacher_data="full", seed=0)
    >>> len(student.y_train), len(teacher.y_train), student.y_val is full.y_val, student.y_test is full.y_test
    (50, 800, True, True)
    >>> 0.1 < float((teacher.y_train != full.y_train).mean()) < 0.3   # about 20% flipped
    True
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .dataset import Dataset
from .subsets import stratified_subset

NOISE_SALT = 104729
"""Separates the label-noise generator from the other uses of the data seed."""


def symmetric_label_noise(y: np.ndarray, p: float, n_classes: int, seed: int) -> np.ndarray:
    """A copy of ``y`` where each label, independently with probability ``p``, became another class
    (uniformly among the ``n_classes - 1`` others).

    Example:
        >>> y = np.zeros(10_000, dtype=np.int64)
        >>> noisy = symmetric_label_noise(y, 0.3, 3, seed=0)
        >>> round(float((noisy != 0).mean()), 2), sorted(set(noisy.tolist()))
        (0.3, [0, 1, 2])
    """
    if not 0 <= p < 1:
        raise ValueError(f"data.label_noise: must be in [0, 1), got {p}")
    rng = np.random.default_rng([seed, NOISE_SALT])
    flip = rng.random(len(y)) < p  # both draws always made: a higher p flips a superset
    offset = rng.integers(1, n_classes, len(y))
    return np.where(flip, (y + offset) % n_classes, y).astype(y.dtype)


def training_datasets(ds: Dataset, n_train: int | None = None, label_noise: float = 0.0,
                      teacher_data: str = "full", seed: int = 0) -> tuple[Dataset, Dataset]:
    """``(student, teacher)`` datasets: ``ds`` with its training split reduced and/or noisy as above.

    With the defaults both are ``ds`` itself. A ``n_train`` larger than the training split or smaller
    than its number of classes is one line naming ``data.n_train``."""
    if n_train is None and label_noise == 0:
        return ds, ds
    n = len(ds.y_train)
    if n_train is not None and not ds.n_classes <= n_train <= n:
        raise ValueError(f"data.n_train: {n_train} is outside {ds.n_classes}..{n} (the classes and the size "
                         f"of the {ds.name} training split)")
    y_noisy = symmetric_label_noise(ds.y_train, label_noise, ds.n_classes, seed) if label_noise else ds.y_train
    full = replace(ds, y_train=y_noisy)
    if n_train is None or n_train == n:
        return full, full
    keep = stratified_subset(ds.y_train, n_train, seed)
    student = replace(full, x_train=ds.x_train[keep], y_train=y_noisy[keep])
    return student, (full if teacher_data == "full" else student)
