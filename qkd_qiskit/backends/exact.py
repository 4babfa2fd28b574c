"""Exact, noiseless read-outs: the torch engine, i.e. the same numbers training optimises.

Example:
    >>> import numpy as np
    >>> from qkd_qiskit.backends.profiles import load_profile
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("q2")
    >>> w = np.zeros(len(st.weight_params))
    >>> StatevectorBackend(load_profile(None)).readouts(st, w, st.input_angles(np.eye(64)[:3] + 1.0)).shape
    (3, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Backend
from .batch import check_batch


class StatevectorBackend(Backend):
    """Exact readouts from the torch engine (the same numbers training optimises)."""

    kind = "statevector"

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        import torch

        from ..engine import compile_student

        w, a = check_batch(student, weights, angles)
        prog = compile_student(student)
        with torch.no_grad():
            out = prog(torch.as_tensor(a), torch.as_tensor(w))
        return out.numpy().astype(np.float64)
