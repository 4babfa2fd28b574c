"""Observables of the estimator and its gradient: sums of Pauli strings compiled for batched
states in torch (differentiable). :class:`Observable` is one compiled operator,
:func:`expectations` evaluates several at once, :class:`ObservableCache` compiles each operator
once (by identity for operators, by content for ``ObservablesArray`` dicts).

Labels are Qiskit's (big-endian: the rightmost letter acts on qubit 0); projector letters
``0 1 + - r l`` are accepted as well.

Example:
    >>> import torch
    >>> plus = torch.tensor([[1.0, 1.0]], dtype=torch.complex128) / 2**0.5
    >>> obs = ObservableCache().get(SparsePauliOp.from_list([("X", 1.0), ("Z", 0.5)]), 1)
    >>> round(float(obs.expectation(plus)[0]), 12)
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit.quantum_info import Pauli, SparsePauliOp

from ..readout import z_signs

__all__ = ["Observable", "ObservableCache", "expectations"]

_PROJECTORS = {"0": ("I", "Z", 1), "1": ("I", "Z", -1), "+": ("I", "X", 1), "-": ("I", "X", -1),
               "r": ("I", "Y", 1), "l": ("I", "Y", -1)}


def _expand_label(label: str, coeff: complex) -> list[tuple[str, complex]]:
    """Rewrite projector letters (0 1 + - r l) as (I +- P)/2 so every term is a Pauli string."""
    terms = [("", complex(coeff))]
    for ch in label:
        if ch in _PROJECTORS:
            a, b, sign = _PROJECTORS[ch]
            terms = [(t + a, c / 2) for t, c in terms] + [(t + b, c * sign / 2) for t, c in terms]
        elif ch in "IXYZ":
            terms = [(t + ch, c) for t, c in terms]
        else:
            raise ValueError(f"unsupported observable letter {ch!r} in {label!r}")
    return terms


class Observable:
    """Compiled ``sum_t c_t P_t``: a diagonal vector for I/Z terms, masks for X/Y terms."""

    def __init__(self, terms: dict[str, complex], n: int):
        idx = np.arange(2**n)
        signs = z_signs(n)  # signs[i, q] = 1 - 2 bit_q(i): the eigenvalue of Z_q on basis state i
        self.diag = np.zeros(2**n, dtype=complex)
        offdiag: dict[int, np.ndarray] = {}
        for label, coeff in terms.items():
            for pauli, c in _expand_label(label, coeff):
                factor, xmask = np.full(2**n, c, dtype=complex), 0
                for q, ch in enumerate(reversed(pauli)):  # labels are big-endian
                    if ch in "XY":
                        xmask |= 1 << q
                    if ch in "YZ":
                        factor *= signs[:, q]
                    if ch == "Y":
                        factor *= 1j
                if xmask:
                    offdiag[xmask] = offdiag.get(xmask, 0) + factor
                else:
                    self.diag += factor
        if np.abs(self.diag.imag).max(initial=0) > 1e-12:
            raise ValueError("observable is not Hermitian (complex diagonal)")
        self.offdiag = [(idx ^ x, f) for x, f in offdiag.items()]
        self._t: dict[tuple, tuple] = {}

    def tensors(self, psi: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(real diagonal, [(partner index, factor)]) in the dtype/device of ``psi`` (cached)."""
        key = (psi.dtype, psi.device)
        if key not in self._t:
            real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
            self._t[key] = (
                torch.as_tensor(self.diag.real, dtype=real, device=psi.device),
                [(torch.as_tensor(p, device=psi.device), torch.as_tensor(f, dtype=psi.dtype, device=psi.device))
                 for p, f in self.offdiag],
            )
        return self._t[key]

    def expectation(self, psi: torch.Tensor) -> torch.Tensor:
        """Real ``<psi|O|psi>`` for states ``(..., 2^n)`` (autograd-safe)."""
        return expectations(psi, [self])[..., 0]


def expectations(psi: torch.Tensor, obs: Sequence[Observable]) -> torch.Tensor:
    """``<psi|O_k|psi>`` for states ``(..., 2^n)``: ``(..., K)``. The diagonal parts of all K
    observables are one matmul (cheaper to differentiate, and batchable by ``is_grads_batched``)."""
    parts = [o.tensors(psi) for o in obs]
    probs = torch.view_as_real(psi).square().sum(-1) if psi.is_complex() else psi.square()
    out = probs @ torch.stack([diag for diag, _ in parts], -1)
    if any(off for _, off in parts):
        extra = [sum(((psi[..., perm].conj() * f * psi).sum(-1).real for perm, f in off), probs.new_zeros(()))
                 for _, off in parts]
        out = out + torch.stack([e.expand(out.shape[:-1]) for e in extra], -1)
    return out


class ObservableCache:
    """Compiled observables by identity (operators) or by content (ObservablesArray dicts).

    Operators are keyed by ``id()`` and the hit is checked against a strong reference kept with
    the entry: ``SparsePauliOp`` defines ``__eq__`` and is unhashable, so no weak-key dict.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, Observable]] = {}
        self._by_key: dict[tuple, Observable] = {}

    def get(self, obs: Any, n: int) -> Observable:
        if isinstance(obs, dict):
            key = (n, tuple(sorted((k, complex(v)) for k, v in obs.items())))
            if key not in self._by_key:
                self._by_key[key] = Observable(dict(obs), n)
            return self._by_key[key]
        hit = self._by_id.get(id(obs))
        if hit is None or hit[0] is not obs:
            if len(self._by_id) > 1024:
                self._by_id.clear()
            hit = (obs, self.get(_as_dict(obs), n))
            self._by_id[id(obs)] = hit
        return hit[1]


def _as_dict(obs: Any) -> dict[str, complex]:
    if isinstance(obs, str):
        return {obs: 1.0}
    if isinstance(obs, Pauli):
        obs = SparsePauliOp(obs)
    if isinstance(obs, SparsePauliOp):
        return {label: complex(c) for label, c in obs.to_list()}
    if isinstance(obs, dict):
        return obs
    return _as_dict(SparsePauliOp.from_operator(obs))
