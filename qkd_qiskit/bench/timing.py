"""The benchmark's fixed student and step, and its timing helpers (medians over repeated steps)."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch

BATCH = 32
N_QUBITS = 6
LAYERS = 5
N_CLASSES = 3
N_SEEDS = 12
N_MODELS = 24
"""Models batched as ``qkd run`` batches one student: 12 seeds x KD off / on."""
STEPS_PER_EPOCH = 25
EPOCHS = 300


# --------------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------------


def median_ms(step: Callable[[], Any], reps: int, warmup: int = 3, budget_s: float | None = None) -> dict:
    """Median (and min) wall time of ``step`` over ``reps`` calls, in ms (stops early on a budget),
    and the median CPU time of this process per call (``cpu_median_ms``, all its threads): on a
    machine shared with other jobs the wall time includes waiting for a core, the CPU time does not."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times), "reps": len(times),
            "cpu_median_ms": statistics.median(cpu)}


def linear_head(m: int, n_in: int, gens: list[torch.Generator], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    bound = 1 / math.sqrt(n_in)
    w = torch.stack([(torch.rand(n_in, N_CLASSES, generator=g, dtype=torch.float64) * 2 - 1) * bound for g in gens])
    b = torch.stack([(torch.rand(1, N_CLASSES, generator=g, dtype=torch.float64) * 2 - 1) * bound for g in gens])
    return torch.nn.Parameter(w.to(dtype)), torch.nn.Parameter(b.to(dtype))


def xor_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary vectors of 64 bits, label from the first two bits (the study's generalised XOR)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 64, generator=g) > 0.5).float()
    x[x.sum(1) == 0, 0] = 1.0  # amplitude embedding needs a non-zero vector
    y = (x[:, 0] != x[:, 1]).long() * (1 + x[:, 0].long())
    return x, y
