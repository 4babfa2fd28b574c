"""The weight-stage chain and its read-out as one autograd node, with a hand-written backward.

When every stage after the prep depends on weights only (no per-sample stage, no multiplexer, no
half kept in two Kronecker factors; true for the amplitude-embedding students), the chain
``psi -> P_s D_s (K_hi,s (x) K_lo,s) ... -> |psi|^2 -> read-out`` runs inside :class:`StageChain`
instead of under autograd. Its backward is the textbook reverse pass over the same few ops
(for ``y = K x``: ``dK = g x^H``, ``dx = K^H g``; for a phase ``y = x * p``: ``dp = sum_b g conj(x)``,
``dx = g conj(p)``; an inverse permutation is one gather), with the stage matrices of all stages
kept stacked: autograd records one node for the chain instead of ~10 per stage (views, selects,
reshapes and their backward nodes), which is most of the step at these sizes (6 qubits, batch 32:
the arithmetic is ~0.1 ms, the dispatch was ~1 ms). Measured in docs/engine_speed.md.

Hand-written because torch has no fused op for "chain of small batched matmuls with saved
inputs", and ``torch.compile`` (inductor) generates no code for complex tensors.

Example:
    >>> import torch
    >>> k_hi = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])      # one model, one stage: X (dense, h = 0)
    >>> psi0 = torch.tensor([[[[1.0]], [[0.0]]]])             # |0>, layout (M, A, B, L) = (1, 2, 1, 1)
    >>> readout = torch.tensor([[1.0], [-1.0]])               # <Z>
    >>> spec = ChainSpec(lo_used=(False,), hi_used=(True,), perms=(None,), inverse=(None,))
    >>> StageChain.apply(psi0, None, k_hi, None, readout, spec).tolist()
    [[[-1.0]]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .layout import batch_major, internal
from .settings import complex_dtype

__all__ = ["ChainSpec", "StageChain"]


@dataclass(frozen=True)
class ChainSpec:
    """Constant structure of a chain: per stage, whether each half has local gates, and its
    permutation gather index on the flattened state (with its inverse), or None."""

    lo_used: tuple[bool, ...]
    hi_used: tuple[bool, ...]
    perms: tuple[torch.Tensor | None, ...]
    inverse: tuple[torch.Tensor | None, ...]


def _stage_forward(psi: torch.Tensor, k_lo: Any, k_hi: Any, phase: Any, s: int, spec: ChainSpec,
                   saved: list) -> torch.Tensor:
    m, hi, b, lo = psi.shape
    if spec.lo_used[s]:
        saved.append(psi)
        psi = torch.bmm(psi.reshape(m, hi * b, lo), k_lo[:, s].transpose(1, 2)).view(m, hi, b, lo)
    if spec.hi_used[s]:
        saved.append(psi)
        psi = torch.bmm(k_hi[:, s], psi.reshape(m, hi, b * lo)).view(m, hi, b, lo)
    if phase is not None:
        saved.append(psi)
        psi = psi * phase[:, s].view(m, hi, 1, lo)
    if spec.perms[s] is not None:
        psi = torch.gather(psi.reshape(m, -1), 1, spec.perms[s].expand(m, -1)).view(m, hi, b, lo)
    return psi


def _stage_backward(g: torch.Tensor, k_lo: Any, k_hi: Any, phase: Any, s: int, spec: ChainSpec,
                    saved: list, grads: dict) -> torch.Tensor:
    m, hi, b, lo = g.shape
    if spec.inverse[s] is not None:
        g = torch.gather(g.reshape(m, -1), 1, spec.inverse[s].expand(m, -1)).view(m, hi, b, lo)
    if phase is not None:
        x = saved.pop()
        grads["phase"][:, s] = (g * x.conj()).sum(2).reshape(m, -1)
        g = g * phase[:, s].conj().view(m, hi, 1, lo)
    if spec.hi_used[s]:
        x = saved.pop().reshape(m, hi, b * lo)
        g2 = g.reshape(m, hi, b * lo)
        grads["hi"][:, s] = torch.bmm(g2, x.transpose(1, 2).conj())
        g = torch.bmm(k_hi[:, s].transpose(1, 2).conj(), g2).view(m, hi, b, lo)
    if spec.lo_used[s]:
        x = saved.pop().reshape(m, hi * b, lo)
        g2 = g.reshape(m, hi * b, lo)
        grads["lo"][:, s] = torch.bmm(g2.transpose(1, 2), x.conj())
        g = torch.bmm(g2, k_lo[:, s].conj()).view(m, hi, b, lo)
    return g


class StageChain(torch.autograd.Function):
    """``(psi0 (M, A, B, L), k_lo (M, S, L, L) | None, k_hi (M, S, A, A), phase (M, S, A*L) | None,
    readout (2^n, n_out), spec) -> (M, B, n_out)``: every stage, ``|psi|^2`` and the read-out."""

    @staticmethod
    def forward(ctx: Any, psi0: torch.Tensor, k_lo: torch.Tensor | None, k_hi: torch.Tensor,
                phase: torch.Tensor | None, readout: torch.Tensor, spec: ChainSpec) -> torch.Tensor:
        mats = [k for k in (k_hi, k_lo, phase) if k is not None]
        psi = psi0
        if any(k.is_complex() for k in mats) and not psi.is_complex():
            psi = psi.to(complex_dtype(psi.dtype))
        if psi.is_complex():
            k_hi, k_lo, phase = (None if k is None else k.to(psi.dtype) for k in (k_hi, k_lo, phase))
        saved: list = []
        for s in range(len(spec.hi_used)):
            psi = _stage_forward(psi, k_lo, k_hi, phase, s, spec, saved)
        probs = torch.view_as_real(psi).square().sum(-1) if psi.is_complex() else psi.square()
        ctx.spec, ctx.n_saved = spec, len(saved)
        ctx.save_for_backward(psi, k_lo, k_hi, phase, readout, *saved)
        ctx.real_input = not psi0.is_complex()
        return torch.matmul(batch_major(probs), readout)

    @staticmethod
    def backward(ctx: Any, g_out: torch.Tensor) -> tuple:
        psi, k_lo, k_hi, phase, readout, *saved = ctx.saved_tensors
        spec = ctx.spec
        h = (psi.shape[3]).bit_length() - 1
        g = 2 * internal(torch.matmul(g_out, readout.T), h) * psi
        grads = {"lo": None if k_lo is None else torch.zeros_like(k_lo),
                 "hi": torch.zeros_like(k_hi), "phase": None if phase is None else torch.zeros_like(phase)}
        for s in reversed(range(len(spec.hi_used))):
            g = _stage_backward(g, k_lo, k_hi, phase, s, spec, saved, grads)
        needs = ctx.needs_input_grad
        g0 = (g.real if ctx.real_input and g.is_complex() else g) if needs[0] else None
        return (g0, _cast(grads["lo"], needs[1], ctx), _cast(grads["hi"], needs[2], ctx),
                _cast(grads["phase"], needs[3], ctx), None, None)


def _cast(grad: torch.Tensor | None, needed: bool, ctx: Any) -> torch.Tensor | None:
    """A stacked gradient, or None when its input does not need one."""
    return grad if needed else None
