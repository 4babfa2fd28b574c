"""Kronecker products of per-qubit 2x2 matrices: one half register's local matrix of a stage.

A half wider than :data:`~.settings.FACTOR_MAX_QUBITS` is kept as two Kronecker factors, so the
work per stage stays near ``2^n`` times a small factor instead of ``2^n * 2^(n/2)`` (the limit is
read here at call time: a test lowers it with ``monkeypatch.setattr(kron, "FACTOR_MAX_QUBITS", 1)``).

Example:
    >>> import torch
    >>> u = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])])  # I on q0, X on q1
    >>> kron_chain(u, 0, 2).tolist()                                             # X (x) I
    [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import torch

from .settings import FACTOR_MAX_QUBITS

__all__ = ["kron_chain", "kron_factors", "unbind"]


def kron_chain(u: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``u[..., stop-1] (x) ... (x) u[..., start]`` for per-qubit matrices ``u (..., n, 2, 2)``.

    Each step is a batched outer product done as a matmul ``(4 x 1) @ (1 x d^2)`` plus one
    reshuffle: much faster (forward and backward) than a broadcast multiply over tiny trailing
    dimensions, whose backward is a strided reduction.
    """
    k = u[..., start, :, :]
    for q in range(start + 1, stop):
        a = u[..., q, :, :]
        d, lead = k.shape[-1], k.shape[:-2]
        outer = torch.matmul(a.reshape(*lead, 4, 1), k.reshape(*lead, 1, d * d))
        k = outer.reshape(*lead, 2, 2, d, d).transpose(-3, -2).reshape(*lead, 2 * d, 2 * d)
    return k


def kron_factors(u: torch.Tensor, start: int, stop: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`kron_chain` of qubits ``[start, stop)``, or for more than ``FACTOR_MAX_QUBITS`` of
    them the two factors ``(K_a, K_b)`` (low qubits first) whose Kronecker product it is."""
    if stop - start <= FACTOR_MAX_QUBITS:
        return kron_chain(u, start, stop)
    mid = start + (stop - start + 1) // 2
    return kron_chain(u, start, mid), kron_chain(u, mid, stop)


def unbind(k: torch.Tensor | tuple[torch.Tensor, ...], axis: int) -> Any:
    """Per-stage matrices of a group: a list of tensors, or of factor tuples for split halves."""
    if isinstance(k, tuple):
        return list(zip(*(f.unbind(axis) for f in k)))
    return k.unbind(axis)
