"""The Piperno XOR task: 64 uniform random bits labelled by the first two.

Example:
    >>> ds = load_xor(n_samples=1000, n_bits=64, seed=0)
    >>> ds.n_features, ds.n_classes, ds.x_train.shape
    (64, 3, (800, 64))
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, from_arrays

XOR_CLASS_NAMES = ("zero", "one", "two")


def xor_labels(bits: np.ndarray) -> np.ndarray:
    """Generalised XOR of the first two bits: 00 and 11 -> 0, 01 -> 1, 10 -> 2.

    It is the only rule of two bits giving class probabilities 1/2, 1/4, 1/4 whose class "zero" is
    not linearly separable from the rest (docs/papers.md). Note: a 3-class softmax over linear scores
    *can* still classify it exactly (scores ``b1 - b0 - 1/2``, ``b0 - b1 - 1/2``, ``0``), which is
    why the linear student reaches F1 = 1 here.
    """
    b0, b1 = bits[:, 0].astype(np.int64), bits[:, 1].astype(np.int64)
    return np.where(b0 == b1, 0, np.where(b0 == 0, 1, 2))


def make_xor(n_samples: int = 1000, n_bits: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random bit vectors with their generalised-XOR labels."""
    if n_bits < 2:
        raise ValueError(f"n_bits: need at least 2 bits, got {n_bits}")
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_samples, n_bits))
    return bits.astype(np.float32), xor_labels(bits)


def load_xor(n_samples: int = 1000, n_bits: int = 64, seed: int = 0,
              split: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Dataset:
    x, y = make_xor(n_samples, n_bits, seed)
    return from_arrays("xor", x, y, XOR_CLASS_NAMES, split, seed)
