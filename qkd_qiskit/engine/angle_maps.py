"""Affine angle maps: many gate angles as one affine function of the input and weight vectors.

:class:`AffineMap` is the compile-time (numpy) table of ``angle_s = scale * (coef . params + offset)``
for a list of slots; :func:`map_to_torch` gives its torch form for one dtype/device and
:func:`apply_map` evaluates it for a batch of models (and samples) in one matmul or gather.

Example:
    >>> import torch
    >>> from qkd_qiskit.engine.atoms import Affine
    >>> amap = AffineMap.build([Affine(((0, 1.0),), 0.0), Affine(((1, 2.0),), 0.5)], n_in=1, n_w=1, scale=1.0)
    >>> amap.in_kind, amap.w_kind, amap.offset.tolist()
    ('dense', 'dense', [0.0, 0.5])
    >>> f = lambda a: torch.as_tensor(a, dtype=torch.float64)
    >>> mp = map_to_torch(amap, f, lambda a: torch.as_tensor(a, dtype=torch.long))
    >>> apply_map(mp, torch.tensor([[[3.0]]], dtype=torch.float64), torch.tensor([[10.0]], dtype=torch.float64),
    ...           per_sample=True).tolist()
    [[[3.0, 20.5]]]
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .atoms import Affine

__all__ = ["DENSE_TABLE_LIMIT", "AffineMap", "apply_map", "map_to_torch"]

DENSE_TABLE_LIMIT = 1 << 22
"""Entries of a dense coefficient matrix before switching to a gather."""


@dataclass
class AffineMap:
    """Compile-time form of ``angle_s = scale * (coef . params + offset)`` for a list of slots.

    The input and weight parts are stored separately, each as ``None`` (unused), ``"ident"``
    (slot s = scale * input s: the amplitude-embedding case), ``"select"`` (each slot reads one
    parameter: a gather) or ``"dense"`` (a coefficient matrix, one matmul).
    """

    n_slots: int
    in_kind: str | None
    in_data: Any
    w_kind: str | None
    w_data: Any
    offset: np.ndarray
    scale: float

    @staticmethod
    def build(affines: Sequence[Affine], n_in: int, n_w: int, scale: float) -> AffineMap:
        n_s = len(affines)
        offset = scale * np.array([a.offset for a in affines], dtype=float)
        in_terms = [[(j, c) for j, c in a.coef if j < n_in] for a in affines]
        w_terms = [[(j - n_in, c) for j, c in a.coef if j >= n_in] for a in affines]
        ident = (n_s <= n_in and all(t == [(s, 1.0)] for s, t in enumerate(in_terms))
                 and not any(w_terms) and not offset.any())
        in_kind, in_data = ("ident", None) if ident else _affine_part(in_terms, n_in, n_s, scale)
        w_kind, w_data = _affine_part(w_terms, n_w, n_s, scale)
        return AffineMap(n_s, in_kind, in_data, w_kind, w_data, offset, scale)


def _affine_part(terms: list[list[tuple[int, float]]], rows: int, n_s: int, scale: float
                 ) -> tuple[str | None, Any]:
    if not any(terms):
        return None, None
    if rows * n_s <= DENSE_TABLE_LIMIT:
        mat = np.zeros((rows, n_s))
        for s, t in enumerate(terms):
            for j, c in t:
                mat[j, s] += scale * c
        return "dense", mat
    if all(len(t) <= 1 for t in terms):
        idx = np.array([t[0][0] if t else 0 for t in terms], dtype=np.int64)
        coef = np.array([scale * t[0][1] if t else 0.0 for t in terms])
        return "select", (idx, coef)
    raise ValueError("compile_circuit: too many parameters mixed into one gate angle table")


def map_to_torch(amap: AffineMap, f: Callable[[Any], torch.Tensor], i: Callable[[Any], torch.Tensor]
                 ) -> SimpleNamespace:
    """Torch form of an :class:`AffineMap` (``f``/``i``: numpy -> float / long tensor)."""
    def part(kind: str | None, data: Any) -> Any:
        if kind == "dense":
            return f(data)
        if kind == "select":
            return i(data[0]), f(data[1])
        return None

    return SimpleNamespace(n=amap.n_slots, in_kind=amap.in_kind, in_data=part(amap.in_kind, amap.in_data),
                           w_kind=amap.w_kind, w_data=part(amap.w_kind, amap.w_data),
                           off=f(amap.offset), has_off=bool(np.any(amap.offset)), scale=amap.scale)


def apply_map(mp: SimpleNamespace, angles: torch.Tensor, weights: torch.Tensor,
              per_sample: bool) -> torch.Tensor:
    """Slot angles: (M, B, S) if per_sample (B may be 1 when no input is involved) else (M, S)."""
    out = None
    if mp.w_kind == "dense":
        out = torch.addmm(mp.off, weights, mp.w_data) if mp.has_off else torch.mm(weights, mp.w_data)
    elif mp.w_kind == "select":
        out = torch.addcmul(mp.off, weights.index_select(1, mp.w_data[0]), mp.w_data[1])
    if per_sample and out is not None:
        out = out.unsqueeze(1)
    if mp.in_kind is not None:
        if not per_sample:
            raise AssertionError("a per-model stage group depends on inputs")
        if mp.in_kind == "ident":
            part = angles[..., :mp.n] * mp.scale
        elif mp.in_kind == "dense":
            part = torch.matmul(angles, mp.in_data)
        else:
            part = angles.index_select(2, mp.in_data[0]) * mp.in_data[1]
        if out is not None:
            out = part + out
        else:
            out = part + mp.off if mp.has_off else part
    if out is None:
        shape = (angles.shape[0], 1, mp.n) if per_sample else (weights.shape[0], mp.n)
        out = mp.off.expand(shape)
    return out
