"""Benchmark: one noise-aware training step against the exact engine's, in one process, side by side.

Both train the 6-qubit Piperno students (amplitude embedding + 5 layers, 64 XOR features) as ``qkd
run`` does: 24 models batched (12 seeds x KD off/on), batch 32, forward + backward + Adam, inputs
embedded once (``encode``). Noise-aware: option ``noise: aer-fake-kingston`` (exact noisy
expectation values, :mod:`qkd_qiskit.noisy`); exact: the engine student. Steps are interleaved
(noisy, exact, noisy, ...) so machine load hits both alike; medians and their ratio are printed.
One-off costs (transpilation of the barrier circuit, 12 trials; the noisy embedding of the 800
training samples) are reported separately.

Run:  .venv/bin/python benchmarks/bench_noise_training.py [--models hea,q2] [--steps 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from qkd_qiskit.data import load_dataset
from qkd_qiskit.models import build_model


def trainer(net: torch.nn.Module, encoded: torch.Tensor, y: torch.Tensor, m: int, batch: int, seed: int):
    """A step function: one Adam step of cross-entropy on a random mini-batch per model."""
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(seed)

    def step() -> None:
        idx = torch.randint(0, len(encoded), (m, batch), generator=gen)
        logits = net(encoded=encoded[idx])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench(model: str, steps: int, m: int, batch: int, noise: str) -> dict:
    data = load_dataset("xor", n_samples=1000, n_bits=64, seed=0)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    gens = lambda: [torch.Generator().manual_seed(s) for s in range(m)]
    exact = build_model(model, 64, 3, gens(), qubits=6, layers=5)
    noisy = build_model(model, 64, 3, gens(), qubits=6, layers=5, noise=noise)
    t0 = time.perf_counter()
    noisy.noisy()
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    states = noisy.encode(x)
    t_states = time.perf_counter() - t0
    runs = {"noisy": trainer(noisy, states, y, m, batch, 0), "exact": trainer(exact, exact.encode(x), y, m, batch, 0)}
    for f in runs.values():
        f(), f()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(steps):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    sim = noisy.noisy()
    return {"model": model, "models": m, "batch": batch, "noise": noise, "active_qubits": list(sim.physical),
            "weight_part_2q_gates": int(sim.weight_part.num_nonlocal_gates()), "blocks": len(sim.program.pairs),
            "build_s": t_build, "embed_800_s": t_states, "noisy_step_ms": 1e3 * med["noisy"],
            "exact_step_ms": 1e3 * med["exact"], "ratio": med["noisy"] / med["exact"],
            "epoch_s_estimate": 25 * med["noisy"], "load_average": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="hea,q2")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--n-models", type=int, default=24)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--noise", default="aer-fake-kingston")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench(name, args.steps, args.n_models, args.batch, args.noise) for name in args.models.split(",")]
    for r in rows:
        print(f"{r['model']:<6} noisy {r['noisy_step_ms']:7.1f} ms  exact {r['exact_step_ms']:6.2f} ms  ratio "
              f"{r['ratio']:5.1f}x  ({r['blocks']} blocks, {r['weight_part_2q_gates']} cz in the weight part; "
              f"setup {r['build_s']:.1f} s, embedding 800 samples {r['embed_800_s']:.1f} s; load {r['load_average']:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
