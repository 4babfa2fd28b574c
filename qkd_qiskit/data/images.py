"""Image datasets: scikit-learn digits (offline), MNIST, Fashion-MNIST and CIFAR-10 as :class:`Dataset`.

Splits: the canonical train/test files; validation is carved from train (seeded, stratified). Digits
has no canonical test split: a seeded stratified 20% of its 1797 images is the test set. Features
are float32 in [0, 1], flattened channel-major (``C, H, W``); :attr:`Dataset.image_shape` keeps the
shape for CNN teachers and for centre-crop / pooling reductions.

Example:
    >>> ds = load_digits_dataset(classes=[0, 1, 2], per_class=50, seed=0)
    >>> ds.image_shape, ds.n_classes, bool(ds.x_train.max() <= 1.0)
    ((1, 8, 8), 3, True)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .dataset import Dataset
from .files import (CIFAR_DIR, CIFAR_TEST, CIFAR_TRAIN, CLASS_NAMES, IDX_FILES, DataFileError, ensure_files, idx_path,
                    read_cifar_batch, read_idx)
from .subsets import stratified_cut


def _select(x: np.ndarray, y: np.ndarray, classes: Sequence[int] | None, per_class: int | None,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``classes`` (relabelled 0..k-1 in the given order), at most ``per_class`` random samples each."""
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if per_class is not None and len(idx) > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        keep.append(idx)
    idx = np.sort(np.concatenate(keep))
    remap = np.full(int(max(max(classes), y.max())) + 1, -1)
    remap[list(classes)] = np.arange(len(classes))
    return x[idx], remap[y[idx]]


def make_image_dataset(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                       y_test: np.ndarray, image_shape: tuple[int, int, int], scale: float,
                       classes: Sequence[int] | None = None, per_class: int | None = None,
                       test_per_class: int | None = None, val_fraction: float = 0.1,
                       seed: int = 0) -> Dataset:
    """Class subset, per-class caps, seeded stratified validation split, features in [0, 1]."""
    n_all = len(CLASS_NAMES.get(name, ())) or int(max(y_train.max(), y_test.max())) + 1
    classes = list(range(n_all)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < n_all]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"data.classes: need >= 2 distinct classes in 0..{n_all - 1}, got {classes}")
    rng = np.random.default_rng(seed)
    # the cap applies to train + val together (the samples a study may learn from), as in the paper
    x_tr, y_tr = _select(x_train, y_train, classes, per_class, rng)
    x_te, y_te = _select(x_test, y_test, classes, test_per_class, rng)
    tr, va = stratified_cut(y_tr, val_fraction, rng)
    n_train = np.bincount(y_tr[tr], minlength=len(classes))
    if n_train.min() == 0:  # stratified_cut puts a class's only sample in validation
        c = classes[int(np.argmin(n_train))]
        n = int((y_tr == np.argmin(n_train)).sum())
        field = "data.per_class" if per_class is not None else "data"
        raise ValueError(f"{field}: class {c} has {n} sample(s) and the validation cut leaves none for training "
                         "(need >= 2 per class)")

    def f(a: np.ndarray) -> np.ndarray:
        return (a.reshape(len(a), -1).astype(np.float32) / np.float32(scale))

    names = tuple(CLASS_NAMES[name][c] if name in CLASS_NAMES else str(c) for c in classes)
    return Dataset(name, f(x_tr[tr]), y_tr[tr].astype(np.int64), f(x_tr[va]), y_tr[va].astype(np.int64),
                   f(x_te), y_te.astype(np.int64), names, image_shape=tuple(image_shape))


def load_digits_dataset(classes: Sequence[int] | None = None, per_class: int | None = None,
                        test_per_class: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                        test_fraction: float = 0.2, root: str | None = None, download: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16): no download needed.

    There is no canonical test split: a stratified ``test_fraction`` (seeded by ``seed``) is held out.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.images.astype(np.float32), d.target.astype(np.int64)
    rest, test = stratified_cut(y, test_fraction, np.random.default_rng(seed + 104729))
    return make_image_dataset("digits", x[rest], y[rest], x[test], y[test], (1, 8, 8), 16.0, classes,
                              per_class, test_per_class, val_fraction, seed)


def _load_idx_dataset(name: str, root: str | None = None, classes: Sequence[int] | None = None,
                      per_class: int | None = None, test_per_class: int | None = None,
                      val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> Dataset:
    folder = ensure_files(name, root, download)
    arr = {k: read_idx(idx_path(folder, stem)) for k, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        xi, yi = arr[f"{split}_images"], arr[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise DataFileError(f"{folder}: {split} images {xi.shape} and labels {yi.shape} do not match "
                                "(expected (N, H, W) and (N,))")
    h, w = arr["train_images"].shape[1:]
    return make_image_dataset(name, arr["train_images"], arr["train_labels"].astype(np.int64),
                              arr["test_images"], arr["test_labels"].astype(np.int64), (1, h, w), 255.0,
                              classes, per_class, test_per_class, val_fraction, seed)


def load_mnist(**options) -> Dataset:
    return _load_idx_dataset("mnist", **options)


def load_fashion_mnist(**options) -> Dataset:
    return _load_idx_dataset("fashion_mnist", **options)


def load_cifar10(root: str | None = None, classes: Sequence[int] | None = None, per_class: int | None = None,
                 test_per_class: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                 download: bool = True) -> Dataset:
    folder = ensure_files("cifar10", root, download) / CIFAR_DIR
    parts = [read_cifar_batch(folder / f) for f in CIFAR_TRAIN]
    x_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = read_cifar_batch(folder / CIFAR_TEST)
    return make_image_dataset("cifar10", x_train, y_train, x_test, y_test, (3, 32, 32), 255.0, classes,
                              per_class, test_per_class, val_fraction, seed)


IMAGE_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits_dataset, "mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10}
