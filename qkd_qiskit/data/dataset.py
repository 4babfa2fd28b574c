"""The :class:`Dataset`: train/val/test splits as plain arrays plus the few facts the trainer needs.

Every dataset is one of these, so new datasets plug in without touching the trainer.

Example:
    >>> ds = from_arrays("toy", np.eye(10), np.arange(10) % 2, ("even", "odd"), seed=0)
    >>> ds.n_features, ds.n_classes, ds.x_train.shape, ds.x_test.shape
    (10, 2, (8, 10), (1, 10))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits as float32 features and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None
    """``(C, H, W)`` of image datasets (features are the flattened images); ``None`` otherwise."""

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)`` of the split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split: unknown split {name!r} (expected train, val or test)")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Seeded shuffle of ``range(n)`` cut into train/val/test by ``fractions``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]


def from_arrays(name: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...],
                split: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> Dataset:
    """Split one labelled array into a :class:`Dataset` (seeded)."""
    tr, va, te = split_indices(len(x), split, seed)
    empty = [name for name, idx in zip(("train", "val", "test"), (tr, va, te)) if len(idx) == 0]
    if empty:
        raise ValueError(f"data.split: {list(split)} of {len(x)} samples leaves the {' and '.join(empty)} "
                         "split empty (more samples or larger fractions)")
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    return Dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], tuple(class_names))
