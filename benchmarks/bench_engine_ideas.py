"""A/B of the engine-speed ideas of docs/engine_speed.md, measured side by side in one process.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_engine_ideas.py [--models 1,24] [--compile]``

Each idea is switched on and off on the benchmark step of ``qkd bench`` (6-qubit amplitude
embedding + 5-layer HEA, 6 <Z>, linear head, batch 32, Adam; encoded inputs); the variants run
interleaved in rounds, and the table gives the median and the minimum of this process's CPU time
per step (on a shared machine the wall time mostly measures the other jobs):

* ``kron``: Kronecker products by one gather + product (:func:`~qkd_qiskit.engine.kron.kron_gather`)
  vs the matmul chain (:func:`~qkd_qiskit.engine.kron.kron_chain`);
* ``adam``: ``torch.optim.Adam(fused=True)`` vs the default (``foreach``) implementation;
* ``--compile``: ``torch.compile`` of forward + loss (inductor; several minutes to compile here).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from qkd_qiskit.bench.timing import (
    BATCH,
    LAYERS,
    N_CLASSES,
    N_QUBITS,
    linear_head,
    xor_data,
)
from qkd_qiskit.circuits import build_student
from qkd_qiskit.engine import QuantumLayer, kron


def make_step(m: int, fused: bool = False, compiled: bool = False) -> Callable[[], None]:
    student = build_student("hea", N_QUBITS, LAYERS)
    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    layer = QuantumLayer(student, m, gens)
    hw, hb = linear_head(m, student.n_outputs, gens, torch.float32)
    opt = torch.optim.Adam([layer.weights, hw, hb], lr=0.1, fused=fused or None)
    x, y = xor_data(800)
    enc = layer.encode(x)
    g = torch.Generator().manual_seed(123)

    def loss(e: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        logits = torch.baddbmm(hb, layer(encoded=e), hw)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES), yy.reshape(-1))

    fn = torch.compile(loss) if compiled else loss

    def step() -> None:
        idx = torch.randint(0, 800, (m, BATCH), generator=g)
        opt.zero_grad(set_to_none=True)
        fn(enc[idx], y[idx]).backward()
        opt.step()

    return step


def with_kron_chain(step: Callable[[], None]) -> Callable[[], None]:
    """The step with :func:`kron_chain` in place of :func:`kron_gather` while it runs."""
    def run() -> None:
        saved = kron.kron_gather  # looked up at call time by kron_factors and kron_full
        kron.kron_gather = kron.kron_chain
        try:
            step()
        finally:
            kron.kron_gather = saved
    return run


def cpu_times(step: Callable[[], None], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.process_time()
        step()
        out.append((time.process_time() - t0) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="1,24")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for m in (int(v) for v in args.models.split(",")):
        variants = {"engine (kron gather, foreach Adam)": make_step(m),
                    "kron matmul chain": with_kron_chain(make_step(m)),
                    "fused Adam": make_step(m, fused=True)}
        if args.compile:
            t0 = time.perf_counter()
            variants["torch.compile(forward + loss)"] = step = make_step(m, compiled=True)
            step()
            print(f"torch.compile: first step {time.perf_counter() - t0:.1f} s")
        times: dict[str, list[float]] = {k: [] for k in variants}
        for step in variants.values():
            cpu_times(step, 10)
        for _ in range(args.rounds):
            for name, step in variants.items():
                times[name] += cpu_times(step, 20)
        base = statistics.median(times[next(iter(variants))])
        print(f"\n{m} model(s): CPU ms per step (median, min) and median / first row")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:44s} {med:8.3f} {min(ts):8.3f} {med / base:6.2f}")


if __name__ == "__main__":
    main()
