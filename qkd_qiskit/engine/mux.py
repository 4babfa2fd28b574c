"""General multiplexed RY after the prep: for each control state ``c``, ``RY(angles[c])`` on a
target that is no longer ``|0>`` (the students never need it; kept exact for any circuit).

:func:`mux_tables` is the compile-time table, :func:`mux_to_torch` its torch form and
:func:`apply_mux` applies it to the state ``(M, A, B, L)``.

Example:
    >>> from qkd_qiskit.engine.atoms import Affine, Mux
    >>> tab = mux_tables(Mux(0, (1,), [Affine((), 0.0), Affine((), 1.0)]), Layout(2), n_inputs=0, n_weights=0)
    >>> tab.target, tab.cidx.tolist()            # states with target bit 0: |00>, |10> -> control 0, 1
    (0, [0, 1])
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import torch

from ..readout import outcome_index
from .angle_maps import AffineMap, apply_map, map_to_torch
from .atoms import Mux
from .layout import Layout, batch_major

__all__ = ["apply_mux", "mux_tables", "mux_to_torch"]


def mux_tables(op: Mux, lay: Layout, n_inputs: int, n_weights: int) -> SimpleNamespace:
    """Control state of each basis state whose target bit is 0 (in (hi, lo) order) and the angles."""
    rest = lay.idx[lay.bits[:, op.target] == 0]
    return SimpleNamespace(target=op.target, cidx=outcome_index(rest, op.controls),
                           map=AffineMap.build(op.angles, n_inputs, n_weights, 0.5))


def mux_to_torch(x: SimpleNamespace, f: Callable[[Any], torch.Tensor], i: Callable[[Any], torch.Tensor]
                 ) -> SimpleNamespace:
    """Torch form of :func:`mux_tables` (``f``/``i``: numpy -> float / long tensor)."""
    return SimpleNamespace(target=x.target, cidx=i(x.cidx), map=map_to_torch(x.map, f, i))


def apply_mux(psi: torch.Tensor, x: SimpleNamespace, angles: torch.Tensor,
              weights: torch.Tensor) -> torch.Tensor:
    """General multiplexed RY on a non-fresh target, on the state (M, A, B, L)."""
    m, hi, b, lo = psi.shape
    theta = apply_map(x.map, angles, weights, per_sample=True)  # (M, B or 1, 2^k)
    c, s = torch.cos(theta)[..., x.cidx], torch.sin(theta)[..., x.cidx]
    size, tq = hi * lo, 2**x.target
    v = batch_major(psi).reshape(m, b, size // (2 * tq), 2, tq)
    a0, a1 = v[:, :, :, 0], v[:, :, :, 1]
    c = c.reshape(m, -1, size // (2 * tq), tq)
    s = s.reshape(m, -1, size // (2 * tq), tq)
    out = torch.stack([c * a0 - s * a1, s * a0 + c * a1], 3).reshape(m, b, hi, lo)
    return out.transpose(1, 2).contiguous()
