"""Argument shapes of a compiled circuit: one model or ``M`` models, a missing side, broadcasting.

Example:
    >>> import torch
    >>> a, w, squeeze = normalise_args(torch.zeros(5, 2), torch.zeros(3, 4), n_inputs=2, n_weights=4)
    >>> tuple(a.shape), tuple(w.shape), squeeze      # one model's angles, broadcast to 3 models
    ((3, 5, 2), (3, 4), False)
    >>> enc, w, squeeze = normalise_encoded(torch.zeros(5, 8), torch.zeros(4), size=8, n_weights=4)
    >>> tuple(enc.shape), tuple(w.shape), squeeze
    ((1, 5, 8), (1, 4), True)
"""

from __future__ import annotations

import torch

__all__ = ["normalise_args", "normalise_encoded"]


def normalise_args(angles: torch.Tensor | None, weights: torch.Tensor | None, n_inputs: int,
                   n_weights: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Shapes to (M, B, n_in) and (M, n_w); a missing side becomes an empty tensor. ``squeeze``:
    the call was for one model ((B, n_in) and/or (n_w,)), so the result drops the model axis."""
    ref = angles if angles is not None else weights
    if ref is None:
        raise ValueError("CompiledCircuit: give angles and/or weights")
    squeeze = (angles is None or angles.dim() == 2) and (weights is None or weights.dim() == 1)
    if angles is None:
        angles = weights.new_zeros(1 if weights.dim() == 1 else weights.shape[0], 1, 0)
    if weights is None:
        weights = angles.new_zeros(angles.shape[0] if angles.dim() == 3 else 1, 0)
    angles = angles.unsqueeze(0) if angles.dim() == 2 else angles
    weights = weights.unsqueeze(0) if weights.dim() == 1 else weights
    if angles.dim() != 3 or weights.dim() != 2:
        raise ValueError(f"CompiledCircuit: expected angles (M, B, n_inputs) and weights "
                         f"(M, n_weights), got {tuple(angles.shape)} and {tuple(weights.shape)}")
    if angles.shape[-1] != n_inputs or weights.shape[-1] != n_weights:
        raise ValueError(f"CompiledCircuit: expected {n_inputs} input angles and "
                         f"{n_weights} weights, got {angles.shape[-1]} and {weights.shape[-1]}")
    if angles.shape[0] != weights.shape[0]:
        if angles.shape[0] == 1:
            angles = angles.expand(weights.shape[0], -1, -1)
        elif weights.shape[0] == 1:
            weights = weights.expand(angles.shape[0], -1)
        else:
            raise ValueError(f"CompiledCircuit: {angles.shape[0]} models of angles but "
                             f"{weights.shape[0]} of weights")
    if angles.dtype != weights.dtype or not angles.dtype.is_floating_point:
        raise ValueError(f"CompiledCircuit: angles and weights must share one floating dtype, "
                         f"got {angles.dtype} and {weights.dtype}")
    return angles, weights, squeeze


def normalise_encoded(encoded: torch.Tensor, weights: torch.Tensor, size: int, n_weights: int
                      ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Prepared states to (M, B, 2^n) and weights to (M, n_w), one side broadcast to the other's
    models; ``squeeze`` as in :func:`normalise_args`."""
    squeeze = encoded.dim() == 2 and weights.dim() == 1
    enc = encoded.unsqueeze(0) if encoded.dim() == 2 else encoded
    w = weights.unsqueeze(0) if weights.dim() == 1 else weights
    if enc.shape[0] != w.shape[0]:
        if w.shape[0] == 1:
            w = w.expand(enc.shape[0], -1)
        elif enc.shape[0] == 1:
            enc = enc.expand(w.shape[0], -1, -1)
        else:
            raise ValueError(f"forward_encoded: {enc.shape[0]} models of inputs, {w.shape[0]} of weights")
    if enc.shape[-1] != size or w.shape[-1] != n_weights:
        raise ValueError(f"forward_encoded: expected states of size {size} and "
                         f"{n_weights} weights, got {enc.shape[-1]} and {w.shape[-1]}")
    return enc, w, squeeze
