"""Stage matrices at run time: the local matrices and phases of all stages of a group in a few batched ops.

Per-qubit 2x2 matrices of every slot come from one ``addcmul`` pair, are multiplied along the
depth, then Kronecker-multiplied into each half register (:mod:`.kron`); the diagonal phases of all
stages are one matmul then ``polar``. In dense mode (``h = 0``) a per-model group's phases and
permutations are folded into one ``(2^n, 2^n)`` matrix per stage.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from .angle_maps import apply_map
from .kron import kron_factors, kron_full, unbind
from .stage_group import StageGroup

__all__ = ["group_matrices", "group_phase"]


def group_matrices(t: SimpleNamespace, gt: SimpleNamespace | None, angles: torch.Tensor, weights: torch.Tensor,
                   per_sample: bool, h: int) -> SimpleNamespace | None:
    """Matrices of all stages of a group at once: per-qubit 2x2 -> kron (-> dense fold).

    Returns per-stage lists ``lo``/``hi`` (matrices, or factor tuples for split halves) and
    ``phase`` (or None), and ``folded`` (dense: phase and permutation are inside ``hi``)."""
    if gt is None:
        return None
    g: StageGroup = gt.g
    n, n_st = g.n, len(g.stages)
    theta = apply_map(gt.slots, angles, weights, per_sample)  # (..., slots)
    if per_sample:
        theta = theta.expand(angles.shape[0], angles.shape[1], -1)
    lead = theta.shape[:-1]
    mats = torch.addcmul(gt.c, torch.cos(theta).unsqueeze(-1), gt.a)
    mats = torch.addcmul(mats, torch.sin(theta).unsqueeze(-1), gt.b)
    if g.is_real:
        mats = mats.view(*lead, n_st, n, g.depth, 2, 2)
    else:
        mats = torch.view_as_complex(mats.view(*lead, n_st, n, g.depth, 2, 2, 2))
    u = mats[..., 0, :, :]
    for d in range(1, g.depth):
        u = torch.matmul(mats[..., d, :, :], u)
    phase = group_phase(t, gt, angles, weights, per_sample, lead)
    out = SimpleNamespace(lo=None, hi=None, phase=phase, folded=False)
    out.lo = kron_factors(u, 0, h) if h else None
    out.hi = kron_factors(u, h, n) if h else kron_full(u, h, n)
    if h == 0 and not per_sample:  # dense: fold phases and permutations into the matrix
        if phase is not None:
            out.hi = phase.unsqueeze(-1) * out.hi
        if g.has_perm.any():
            out.hi = out.hi[..., gt.perm_rows, gt.src, :]
        out.folded, out.phase = True, None
    # one unbind per group instead of one select per stage: a single backward node
    axis = 2 if per_sample else 1
    out.lo = unbind(out.lo, axis) if out.lo is not None else None
    out.hi = unbind(out.hi, axis)
    out.phase = out.phase.unbind(axis) if out.phase is not None else None
    return out


def group_phase(t: SimpleNamespace, gt: SimpleNamespace, angles: torch.Tensor, weights: torch.Tensor,
                per_sample: bool, lead: tuple[int, ...]) -> torch.Tensor | None:
    """Diagonal phases (..., S, 2^n): angles -> one matmul -> polar, for all stages at once."""
    g: StageGroup = gt.g
    if not g.has_phase:
        return None
    size, n_st = 2**g.n, len(g.stages)
    if gt.diag is None:
        phi = gt.const_phase.expand(*lead, n_st, size)
    else:
        theta = apply_map(gt.diag, angles, weights, per_sample)
        phi = torch.matmul(theta, gt.diag_pat).view(*theta.shape[:-1], n_st, size) + gt.const_phase
    if g.real:
        return torch.cos(phi)
    return torch.polar(t.one.expand_as(phi), phi)
