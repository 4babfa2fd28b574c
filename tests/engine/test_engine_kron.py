"""Kronecker products of per-qubit matrices against ``torch.kron``."""

from __future__ import annotations

from functools import reduce

import torch

from qkd_qiskit.engine import kron, settings
from qkd_qiskit.engine.kron import kron_chain, kron_factors


def _random_unitaries(*lead: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(*lead, n, 2, 2, dtype=torch.complex128, generator=g)
    return torch.linalg.qr(z)[0]


def test_kron_chain_matches_torch_kron():
    u = _random_unitaries(3, n=5)  # 3 stages of 5 qubits
    for start, stop in ((0, 5), (1, 4), (2, 3)):
        out = kron_chain(u, start, stop)
        for s in range(3):
            ref = reduce(torch.kron, [u[s, q] for q in reversed(range(start, stop))])
            assert torch.allclose(out[s], ref, atol=1e-12)


def test_kron_factors_split_wide_halves(monkeypatch):
    u = _random_unitaries(2, n=7)
    assert isinstance(kron_factors(u, 0, settings.FACTOR_MAX_QUBITS), torch.Tensor)
    monkeypatch.setattr(kron, "FACTOR_MAX_QUBITS", 3)
    low, high = kron_factors(u, 0, 7)  # low qubits first: (0..3), (4..6)
    assert low.shape[-1] == 16 and high.shape[-1] == 8
    full = kron_chain(u, 0, 7)
    for s in range(2):
        assert torch.allclose(torch.kron(high[s], low[s]), full[s], atol=1e-12)
