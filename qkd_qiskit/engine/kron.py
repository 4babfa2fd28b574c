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

__all__ = ["kron_chain", "kron_factors", "kron_full", "kron_gather", "unbind"]

_GATHER: dict[tuple[int, int, torch.device], torch.Tensor] = {}


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


def kron_gather(u: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """:func:`kron_chain` as one gather and one product: entry ``(i, j)`` of the Kronecker product
    is ``prod_k u[..., start + k, bit_k(i), bit_k(j)]``.

    Two ops forward and two backward instead of four per qubit: at a half register of 3 qubits
    (6-qubit students) the matrices of all stages cost about half the time of the chain
    (docs/engine_speed.md). Used for halves of up to ``FACTOR_MAX_QUBITS`` qubits.

    >>> u = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])])
    >>> torch.equal(kron_gather(u, 0, 2), kron_chain(u, 0, 2))
    True
    """
    nq, lead = stop - start, u.shape[:-3]
    key = (start, stop, u.device)
    if key not in _GATHER:
        d = 2**nq
        i = torch.arange(d)[:, None, None]
        j = torch.arange(d)[None, :, None]
        k = torch.arange(nq)[None, None, :]
        _GATHER[key] = ((start + k) * 4 + ((i >> k) & 1) * 2 + ((j >> k) & 1)).reshape(-1).to(u.device)
    d = 2**nq
    flat = u.reshape(*lead, -1).index_select(-1, _GATHER[key]).view(*lead, d, d, nq)
    return flat[..., 0] if nq == 1 else flat.prod(-1)


def kron_full(u: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """The whole Kronecker product of qubits ``[start, stop)``: :func:`kron_gather` up to
    ``FACTOR_MAX_QUBITS`` qubits, :func:`kron_chain` above (the gather holds ``4^n * n`` entries:
    forced dense mode at 10 qubits took seconds per step with it)."""
    return kron_gather(u, start, stop) if stop - start <= FACTOR_MAX_QUBITS else kron_chain(u, start, stop)


def kron_factors(u: torch.Tensor, start: int, stop: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`kron_gather` of qubits ``[start, stop)``, or for more than ``FACTOR_MAX_QUBITS`` of
    them the two factors ``(K_a, K_b)`` (low qubits first) whose Kronecker product it is."""
    if stop - start <= FACTOR_MAX_QUBITS:
        return kron_gather(u, start, stop)
    mid = start + (stop - start + 1) // 2
    return kron_gather(u, start, mid), kron_gather(u, mid, stop)


def unbind(k: torch.Tensor | tuple[torch.Tensor, ...], axis: int) -> Any:
    """Per-stage matrices of a group: a list of tensors, or of factor tuples for split halves."""
    if isinstance(k, tuple):
        return list(zip(*(f.unbind(axis) for f in k)))
    return k.unbind(axis)
