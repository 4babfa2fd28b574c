"""The arithmetic floor of a step: its FLOPs, this machine's matmul rate, and the fraction of it a path reaches.

The floor of a path is the time its step would take if it did only the arithmetic of the
engine's algorithm (:meth:`~qkd_qiskit.engine.CompiledCircuit.step_flops`: the half-register
matmuls of every stage, forward and backward) at the rate this process reaches on one large
complex matmul (one thread). ``fraction`` = floor / measured step: the rest is dispatch, memory
traffic and Python.

Example:
    >>> rate = matmul_gflops(size=64, reps=3)
    >>> rate > 0
    True
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..engine import QuantumLayer
from .timing import BATCH


def matmul_gflops(size: int = 256, reps: int = 20) -> float:
    """GFLOP/s of a ``size x size`` complex64 matmul in this process (the best of ``reps``)."""
    a = torch.randn(size, size, dtype=torch.complex64)
    b = torch.randn(size, size, dtype=torch.complex64)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 8 * size**3 / best / 1e9


def floor_report(student: Any, steps: dict, models: tuple[int, ...]) -> dict:
    """FLOPs per step of one model and of each batched count, the floor times at this machine's
    matmul rate, and for every timed path with a ``models`` count the fraction of the floor reached."""
    program = QuantumLayer(student, 1).program
    rate = matmul_gflops()
    out = {"matmul_gflops": rate, "flops_per_model_step": program.step_flops(BATCH)}
    out["floor_ms_per_model_step"] = out["flops_per_model_step"] / rate / 1e6
    for m in models:
        out[f"flops_step_{m}_models"] = program.step_flops(BATCH, m)
    fractions = {}
    for name, res in steps.items():
        if "per_model_ms" in res:
            fractions[name] = out["floor_ms_per_model_step"] / res["per_model_ms"]
    out["fraction_of_floor"] = fractions
    return out
