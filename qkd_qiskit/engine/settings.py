"""Engine settings: the simulation modes, the register sizes at which they switch, and dtypes.

The modules that use a limit import it by name (:mod:`.compiled` reads ``DENSE_MAX_QUBITS`` when
a circuit is compiled, :mod:`.kron` reads ``FACTOR_MAX_QUBITS`` at each call), so a test lowers one
by patching it there, e.g. ``monkeypatch.setattr(qkd_qiskit.engine.kron, "FACTOR_MAX_QUBITS", 1)``;
the copies here and in :mod:`qkd_qiskit.engine` are for reading.

Example:
    >>> import torch
    >>> complex_dtype(torch.float32), complex_dtype(torch.float64)
    (torch.complex64, torch.complex128)
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["DENSE_MAX_QUBITS", "FACTOR_MAX_QUBITS", "FUSED", "MODES", "Mode", "complex_dtype"]

DENSE_MAX_QUBITS = 5
"""Auto mode fuses weight stages into dense ``(2^n, 2^n)`` unitaries up to this many qubits."""
FACTOR_MAX_QUBITS = 5
"""Factored mode: a half register wider than this is applied as two Kronecker factors, so the
work per stage stays ~``2^n * 2^(n/4)`` instead of ``2^n * 2^(n/2)`` (registers above 10 qubits)."""

FUSED = True
"""Run the weight stages of a qualifying circuit as one compiled kernel (:mod:`.fused`, which
reads its own copy: patch ``qkd_qiskit.engine.fused.FUSED``); False keeps every stage in eager torch."""

Mode = Literal["auto", "dense", "factored"]
MODES = ("auto", "dense", "factored")
"""The values of :data:`Mode`."""


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex64 for float32 (and lower), complex128 for float64."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64
