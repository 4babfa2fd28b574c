"""Stage groups: the numeric tables of all stages of one kind, built in one batch.

All per-model (weight) stages form one group and all per-sample (input) stages another, so each
group's matrices are computed by a few vectorised ops (:mod:`.stage_matrices`). Each local slot
(stage s, qubit q, depth d) is ``mat = cos(a/2) A + sin(a/2) Bm + C``; the diagonal terms of all
stages share one angle map and one phase-pattern matrix.

Example:
    >>> from qkd_qiskit.engine.atoms import Affine, Rot
    >>> from qkd_qiskit.engine.schedule import Stage
    >>> st = Stage(2, per_sample=False, local={0: [Rot(0, "Y", Affine(((0, 1.0),), 0.0))]})
    >>> g = StageGroup.build([st], n=2, n_in=0, n_w=1, h=1)
    >>> g.depth, g.abc.shape, g.real, g.lo_used.tolist(), g.hi_used.tolist()
    (1, (3, 2, 8), True, [True], [False])
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from .angle_maps import AffineMap, map_to_torch
from .atoms import Affine, Rot
from .schedule import Stage

__all__ = ["StageGroup", "group_to_torch"]

_PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _slot_matrices(atom: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Affine]:
    """``mat = cos(a/2) A + sin(a/2) Bm + C`` of a local slot (None = identity padding)."""
    zero = np.zeros((2, 2), dtype=complex)
    if atom is None:
        return np.eye(2, dtype=complex), zero, zero, Affine((), 0.0)
    if isinstance(atom, Rot):
        return np.eye(2, dtype=complex), -1j * _PAULI[atom.axis], zero, atom.angle
    return zero, zero, atom.mat.astype(complex), Affine((), 0.0)


def _interleave(m: np.ndarray) -> np.ndarray:
    """2x2 complex -> 8 reals ``(re, im)`` per entry, row-major (``view_as_complex`` order)."""
    return np.stack([m.real, m.imag], -1).reshape(-1)


@dataclass
class StageGroup:
    """All stages of one kind (per-model weights or per-sample inputs), built in one batch."""

    stages: list[Stage]
    n: int
    depth: int
    slots: AffineMap  # half angles of the S * n * depth local slots
    abc: np.ndarray  # (3, slots, 8): mat = cos * A + sin * Bm + C, interleaved re/im
    is_real: bool
    diag: AffineMap | None  # angles of the diagonal terms
    diag_pat: np.ndarray | None  # (n_terms, S * 2^n)
    const_phase: np.ndarray  # (S, 2^n)
    has_phase: bool
    real_phase: bool
    src: np.ndarray  # (S, 2^n)
    has_perm: np.ndarray  # (S,) bool
    lo_used: np.ndarray  # (S,) bool: any local gate on the low half (qubits < h)
    hi_used: np.ndarray

    @staticmethod
    def build(stages: list[Stage], n: int, n_in: int, n_w: int, h: int) -> StageGroup:
        depth = max([1] + [len(v) for s in stages for v in s.local.values()])
        slots = [
            s.local.get(q, [])[d] if d < len(s.local.get(q, [])) else None
            for s in stages for q in range(n) for d in range(depth)
        ]
        mats = [_slot_matrices(a) for a in slots]
        abc = np.stack([np.stack([_interleave(m[r]) for m in mats]) for r in range(3)])
        terms = [(a, p, si) for si, s in enumerate(stages) for a, p in s.diag_terms]
        size = 2**n
        diag = diag_pat = None
        if terms:
            diag = AffineMap.build([a for a, _, _ in terms], n_in, n_w, 1.0)
            diag_pat = np.zeros((len(terms), len(stages) * size))
            for t, (_, p, si) in enumerate(terms):
                diag_pat[t, si * size:(si + 1) * size] = p
        const_phase = np.stack([s.const_phase for s in stages])
        wrapped = np.mod(const_phase, 2 * np.pi)
        real_phase = not terms and bool(np.all(np.isclose(wrapped, 0) | np.isclose(wrapped, np.pi)
                                                | np.isclose(wrapped, 2 * np.pi)))
        return StageGroup(
            stages=stages, n=n, depth=depth,
            slots=AffineMap.build([m[3] for m in mats], n_in, n_w, 0.5),
            abc=abc, is_real=bool(np.allclose(abc[:, :, 1::2], 0)), diag=diag, diag_pat=diag_pat,
            const_phase=const_phase, has_phase=bool(terms) or not np.allclose(const_phase, 0),
            real_phase=real_phase, src=np.stack([s.src for s in stages]),
            has_perm=np.array([not np.array_equal(s.src, np.arange(size)) for s in stages]),
            lo_used=np.array([any(q < h for q in s.local) for s in stages]),
            hi_used=np.array([any(q >= h for q in s.local) for s in stages]),
        )

    @property
    def real(self) -> bool:
        """Whether every matrix and phase of the group is real (the state may stay real)."""
        return self.is_real and self.real_phase


def group_to_torch(g: StageGroup | None, f: Callable[[Any], torch.Tensor], i: Callable[[Any], torch.Tensor]
                   ) -> SimpleNamespace | None:
    """Torch form of a :class:`StageGroup` (``f``/``i``: numpy -> float / long tensor)."""
    if g is None:
        return None
    abc = g.abc[:, :, 0::2] if g.is_real else g.abc
    return SimpleNamespace(
        g=g, slots=map_to_torch(g.slots, f, i), a=f(abc[0]), b=f(abc[1]), c=f(abc[2]),
        diag=None if g.diag is None else map_to_torch(g.diag, f, i),
        diag_pat=None if g.diag_pat is None else f(g.diag_pat),
        const_phase=f(g.const_phase), src=i(g.src), perm_rows=i(np.arange(len(g.stages))[:, None]),
    )
