"""Stage application: one stage ``P . D . (K_hi (x) K_lo)`` applied to the state ``(M, A, B, L)``.

The local part is two half-register matmuls (``K_hi psi K_lo^T``), or, for a half kept as two
Kronecker factors, one ``einsum`` per factor; then the diagonal phase and the basis permutation
(one gather). A dense stage (``folded``) is a single matmul with both already inside ``K_hi``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from .settings import complex_dtype
from .stage_group import StageGroup

__all__ = ["apply_stage"]


def apply_stage(psi: torch.Tensor, g: StageGroup, mats: SimpleNamespace, s: int,
                perm: torch.Tensor | None, per_sample: bool) -> torch.Tensor:
    """Stage ``s`` of group ``g`` (matrices ``mats`` of :func:`~.stage_matrices.group_matrices`)
    on the state (M, A, B, L); ``perm``: its gather index for this batch size, or None."""
    m, hi, b, lo = psi.shape
    k_hi, phase = mats.hi[s], (mats.phase[s] if mats.phase is not None else None)
    k_lo = mats.lo[s] if mats.lo is not None else None
    if isinstance(k_hi, tuple) or isinstance(k_lo, tuple):  # a half register in two factors
        return _apply_split(psi, g, s, perm, per_sample, k_hi, k_lo, phase)
    if (k_hi.is_complex() or (phase is not None and phase.is_complex())) and not psi.is_complex():
        psi = psi.to(complex_dtype(psi.dtype))
    if psi.is_complex() and not k_hi.is_complex():  # a real group after a complex stage
        k_hi = k_hi.to(psi.dtype)
        k_lo = k_lo.to(psi.dtype) if k_lo is not None else None
    if g.lo_used[s]:
        if per_sample:
            psi = torch.einsum("mbij,mabj->mabi", k_lo, psi)
        else:
            psi = torch.bmm(psi.reshape(m, hi * b, lo), k_lo.transpose(1, 2))
    if g.hi_used[s] or mats.folded:
        if per_sample:
            psi = torch.einsum("mbij,mjbl->mibl", k_hi, psi.reshape(m, hi, b, lo))
        else:
            psi = torch.bmm(k_hi, psi.reshape(m, hi, b * lo))
    psi = psi.reshape(m, hi, b, lo)
    if mats.folded:
        return psi
    return _phase_perm(psi, phase, perm, per_sample)


def _apply_split(psi: torch.Tensor, g: StageGroup, s: int, perm: torch.Tensor | None,
                 per_sample: bool, k_hi: Any, k_lo: Any, phase: torch.Tensor | None) -> torch.Tensor:
    """:func:`apply_stage` for wide registers: each half is ``K_b (x) K_a`` (or one matrix),
    applied factor by factor on the state viewed as ``(M, A_b, A_a, B, L_b, L_a)``."""
    m, hi, b, lo = psi.shape
    k_hi = k_hi if isinstance(k_hi, tuple) else (k_hi,)
    k_lo = k_lo if isinstance(k_lo, tuple) else (k_lo,)
    if any(k.is_complex() for k in (*k_hi, *k_lo)) and not psi.is_complex():
        psi = psi.to(complex_dtype(psi.dtype))
    k_hi = tuple(k.to(psi.dtype) for k in k_hi)
    k_lo = tuple(k.to(psi.dtype) for k in k_lo)
    da = [k.shape[-1] for k in k_hi]  # low factor first
    dl = [k.shape[-1] for k in k_lo]
    x = psi.reshape(m, *(da[::-1]), b, *(dl[::-1]))
    hi_axes = list(range(1, 1 + len(da)))[::-1]  # axis of factor j (j = 0: the lowest qubits)
    b_axis = 1 + len(da)
    lo_axes = list(range(b_axis + 1, b_axis + 1 + len(dl)))[::-1]
    sub = "m" + "cdefghnopq"[: x.dim() - 1]
    for flag, factors, axes in ((g.lo_used[s], k_lo, lo_axes), (g.hi_used[s], k_hi, hi_axes)):
        if not flag:
            continue
        for k, ax in zip(factors, axes):
            out_sub = sub[:ax] + "z" + sub[ax + 1:]
            mat = ("m" + sub[b_axis] + "z" + sub[ax]) if per_sample else ("mz" + sub[ax])
            x = torch.einsum(f"{mat},{sub}->{out_sub}", k, x)
    return _phase_perm(x.reshape(m, hi, b, lo), phase, perm, per_sample)


def _phase_perm(psi: torch.Tensor, phase: torch.Tensor | None, perm: torch.Tensor | None,
               per_sample: bool) -> torch.Tensor:
    """The diagonal and permutation parts of a stage, on the state ``(M, A, B, L)``."""
    m, hi, b, lo = psi.shape
    if phase is not None:
        ph = phase.reshape(m, -1, hi, lo).transpose(1, 2) if per_sample else phase.reshape(m, hi, 1, lo)
        psi = psi * ph
    if perm is not None:  # gather is several times faster than index_select along dim 1
        psi = torch.gather(psi.reshape(m, -1), 1, perm.expand(m, -1)).reshape(m, hi, b, lo)
    return psi
