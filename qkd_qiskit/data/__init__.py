"""Datasets: the XOR task, image datasets and their splits, behind one loader.

Example:
    >>> ds = load_dataset("xor", n_samples=1000, n_bits=64, seed=0)
    >>> ds.n_features, ds.n_classes, ds.x_train.shape
    (64, 3, (800, 64))
"""

from __future__ import annotations

from typing import Callable

from .dataset import Dataset, from_arrays, split_indices
from .files import DataFileError
from .images import IMAGE_LOADERS
from .subsets import stratified_cut, stratified_subset
from .training_split import symmetric_label_noise, training_datasets
from .xor import XOR_CLASS_NAMES, load_xor, make_xor, xor_labels

__all__ = ["Dataset", "DataFileError", "IMAGE_DATASETS", "LOADERS", "XOR_CLASS_NAMES", "from_arrays",
           "load_dataset", "make_xor", "split_indices", "stratified_cut", "stratified_subset",
           "symmetric_label_noise", "training_datasets", "xor_labels"]

IMAGE_DATASETS = tuple(IMAGE_LOADERS)
"""Image datasets (see :mod:`qkd_qiskit.data.images`); ``digits`` is bundled with scikit-learn (offline)."""

LOADERS: dict[str, Callable[..., Dataset]] = {"xor": load_xor, **IMAGE_LOADERS}


def load_dataset(name: str, **options) -> Dataset:
    """Build the dataset ``name`` with its options (see :data:`LOADERS`)."""
    if name not in LOADERS:
        raise ValueError(f"data.name: unknown dataset {name!r} (known: {', '.join(sorted(LOADERS))})")
    return LOADERS[name](**options)
