"""The hand-computed test metrics equal scikit-learn's, bit for bit, including classes that are
never predicted or never present (zero_division=0) and a single class."""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from qkd_qiskit.distill import classification_metrics


def test_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, k, n), rng.integers(0, k, n), k) for k in (2, 3, 4, 10) for n in (1, 5, 37, 100)]
    cases += [(np.zeros(6, int), np.zeros(6, int), 3),          # one class only: the others are 0/0
              (np.array([0, 1, 1, 0]), np.full(4, 2), 3),        # never right, class 2 never present
              (np.array([2, 2, 1]), np.array([0, 0, 0]), 4)]
    for y, p, k in cases:
        labels = list(range(k))
        ours = classification_metrics(y, p, k)
        assert ours == {
            "f1_macro": float(f1_score(y, p, labels=labels, average="macro", zero_division=0)),
            "f1_weighted": float(f1_score(y, p, labels=labels, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(y, p)),
            "confusion_matrix": confusion_matrix(y, p, labels=labels).tolist(),
        }, (y, p, k)
