"""Datasets: plain arrays plus the few facts the trainer needs.

Every dataset is a :class:`Dataset` holding train/val/test splits as numpy arrays, so new datasets
(images, later) plug in without touching the trainer.

Example:
    >>> ds = load_dataset("xor", n_samples=1000, n_bits=64, seed=0)
    >>> ds.n_features, ds.n_classes, ds.x_train.shape
    (64, 3, (800, 64))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

XOR_CLASS_NAMES = ("zero", "one", "two")


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


def xor_labels(bits: np.ndarray) -> np.ndarray:
    """Generalised XOR of the first two bits: 00 and 11 -> 0, 01 -> 1, 10 -> 2.

    It is the only rule of two bits giving class probabilities 1/2, 1/4, 1/4 whose class "zero" is
    not linearly separable from the rest (NOTES.md). Note: a 3-class softmax over linear scores
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
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    return Dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], tuple(class_names))


def _load_xor(n_samples: int = 1000, n_bits: int = 64, seed: int = 0,
              split: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Dataset:
    x, y = make_xor(n_samples, n_bits, seed)
    return from_arrays("xor", x, y, XOR_CLASS_NAMES, split, seed)


def _image_loader(name: str) -> Callable[..., Dataset]:
    def load(**options) -> Dataset:
        from . import images

        return {"digits": images.load_digits_dataset, "mnist": images.load_mnist,
                "fashion_mnist": images.load_fashion_mnist, "cifar10": images.load_cifar10}[name](**options)

    return load


IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
"""Image datasets (see :mod:`qkd_qiskit.images`); ``digits`` is bundled with scikit-learn (offline)."""

LOADERS: dict[str, Callable[..., Dataset]] = {"xor": _load_xor, **{n: _image_loader(n) for n in IMAGE_DATASETS}}


def load_dataset(name: str, **options) -> Dataset:
    """Build the dataset ``name`` with its options (see :data:`LOADERS`)."""
    if name not in LOADERS:
        raise ValueError(f"data.name: unknown dataset {name!r} (known: {', '.join(sorted(LOADERS))})")
    return LOADERS[name](**options)
