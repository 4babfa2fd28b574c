"""Seeded, class-stratified subsets: the one home for every stratified cut of the package.

Example:
    >>> y = np.array([0] * 8 + [1] * 4)
    >>> rest, cut = stratified_cut(y, 0.25, np.random.default_rng(0))
    >>> np.bincount(y[cut]).tolist(), len(rest)
    ([2, 1], 9)
    >>> np.bincount(y[stratified_subset(y, 6)]).tolist()
    [4, 2]
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_cut(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, cut) with ``round(fraction * n_c)`` (>= 1) of every class in ``cut``.

    Written by hand rather than with ``train_test_split``: it takes at least one sample of every
    class and consumes the caller's generator, so dataset splits made with it stay as they are."""
    cut = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut.append(idx[:max(1, int(round(fraction * len(idx))))])
    cut = np.sort(np.concatenate(cut))
    return np.setdiff1d(np.arange(len(y)), cut), cut


def stratified_subset(y: np.ndarray, max_samples: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified subset of ``max_samples`` samples (all of them when
    ``max_samples`` is None or leaves fewer samples out than there are classes), by scikit-learn's ``train_test_split(stratify=y)``.
    Noisy simulation of wide ISA circuits and QPU time cost seconds per sample; exact and backend
    scores are computed on the same subset."""
    n_classes = len(np.unique(y))
    if max_samples is None or max_samples > len(y) - n_classes:  # the rest could not hold every class
        return np.arange(len(y))
    if max_samples < n_classes:
        raise ValueError(f"max_samples: {max_samples} is fewer than the {n_classes} test classes")
    try:
        keep, _ = train_test_split(np.arange(len(y)), train_size=max_samples, stratify=y, random_state=seed)
    except ValueError:  # a class with one member: scikit-learn cannot stratify, so share out by hand
        keep = _proportional(y, max_samples, np.random.default_rng(seed))
    return np.sort(keep)


def _proportional(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices, each class's share ``n * n_c / N`` rounded by largest remainder (at least one
    per class while ``n`` allows), drawn at random within the class."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * n / len(y)
    quota = np.minimum(np.maximum(np.floor(exact).astype(int), 1), counts)
    order = np.argsort(-(exact - np.floor(exact)))
    i = 0
    while quota.sum() != n:
        c = order[i % len(order)]
        step = 1 if quota.sum() < n else -1
        if 1 <= quota[c] + step <= counts[c]:  # terminates: callers ask for n_classes <= n < N
            quota[c] += step
        i += 1
    return np.concatenate([rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in zip(classes, quota)])
