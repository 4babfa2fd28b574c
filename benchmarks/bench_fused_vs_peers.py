"""The fused training step and the fused stage chain against the eager engine and TensorCircuit-NG,
side by side in one process.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fused_vs_peers.py [--rounds 10] [--models 1,24]``
(TensorCircuit-NG needs ``pip install -e ".[bench]"``; without it only the engine rows run.)

The step is ``qkd bench``'s (6-qubit amplitude embedding + 5-layer HEA, 6 <Z>, linear head,
batch 32, Adam; the engine on encoded inputs: "engine step" is the trainer's fused training step
(:mod:`qkd_qiskit.train_step`), "engine fused" / "engine eager" torch autograd + Adam around the
fused stage chain / the eager stages; TensorCircuit-NG's whole step
under ``jax.jit`` with the circuit ``vmap``-ed over the batch and, for 24 models, over the models).
Compile / warm-up times are printed apart. Then the paths run interleaved in rounds (2 warm-up
steps, then 30 steps for one model or 5 for 24 per round and path), and the table gives the
medians over rounds of the wall and this process's CPU time per model step, and the median of the
per-round ratios TensorCircuit-NG / engine (> 1: the engine is faster). XLA runs on one thread
(``--xla_cpu_multi_thread_eigen=false``), yet its runtime still uses a second core at times, which
is why its CPU time can exceed its wall time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from qkd_qiskit.bench.jax_step import configure_jax

configure_jax(1)

import torch  # noqa: E402

from qkd_qiskit.bench.jax_step import JAX_PEERS, engine_reference, jax_timing, missing_peer  # noqa: E402
from qkd_qiskit.bench.paths import engine_step, training_step  # noqa: E402
from qkd_qiskit.bench.timing import LAYERS, N_QUBITS  # noqa: E402
from qkd_qiskit.circuits import build_student  # noqa: E402


def tensorcircuit_step(student, m: int):
    """TensorCircuit-NG's jitted step for ``m`` models (``jax_timing``'s, captured before timing)."""
    import qkd_qiskit.bench.jax_step as js
    from qkd_qiskit.bench.tensorcircuit import tensorcircuit_expvals

    captured = {}
    original = js.median_ms
    js.median_ms = lambda step, *a, **k: (captured.setdefault("step", step), {"median_ms": 0.0})[1]
    try:
        weights, _, _ = engine_reference(student, m)
        res = jax_timing(tensorcircuit_expvals(student), weights, m, True)
    finally:
        js.median_ms = original
    return captured["step"], res["compile_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--models", default="1,24")
    args = ap.parse_args()
    torch.set_num_threads(1)
    student = build_student("hea", n_qubits=N_QUBITS, layers=LAYERS)
    peers = missing_peer(*JAX_PEERS, "tensorcircuit") is None
    steps = {}
    for m in (int(v) for v in args.models.split(",")):
        if peers:
            t0 = time.perf_counter()
            steps[("tensorcircuit", m)], compile_s = tensorcircuit_step(student, m)
            print(f"tensorcircuit, {m} model(s): compile {compile_s:.1f} s", flush=True)
        for name in ("engine step", "engine fused", "engine eager"):
            t0 = time.perf_counter()
            step = (training_step(student, m) if name == "engine step"
                    else engine_step(student, m, True, fused=name == "engine fused"))
            step()
            print(f"{name}, {m} model(s): build + first step {time.perf_counter() - t0:.2f} s", flush=True)
            steps[(name, m)] = step
    times = {k: ([], []) for k in steps}
    for _ in range(args.rounds):
        for (name, m), step in steps.items():
            n = 30 if m == 1 else 5
            for _ in range(2):
                step()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                step()
            times[(name, m)][0].append((time.perf_counter() - t0) / n * 1e3 / m)
            times[(name, m)][1].append((time.process_time() - c0) / n * 1e3 / m)
    print(f"\n{'path':16s} {'models':>6s} {'wall ms/model step':>19s} {'CPU ms':>8s}")
    for (name, m), (wall, cpu) in times.items():
        print(f"{name:16s} {m:6d} {statistics.median(wall):19.3f} {statistics.median(cpu):8.3f}")
    for m in sorted({m for _, m in steps}):
        for name in ("engine step", "engine fused", "engine eager"):
            if ("tensorcircuit", m) not in times:
                continue
            tc, en = times[("tensorcircuit", m)], times[(name, m)]
            rw = statistics.median(a / b for a, b in zip(tc[0], en[0]))
            rc = statistics.median(a / b for a, b in zip(tc[1], en[1]))
            print(f"{m} model(s): TensorCircuit-NG / {name}: wall {rw:.2f}x, CPU {rc:.2f}x")
        step, fused, eager = times[("engine step", m)], times[("engine fused", m)], times[("engine eager", m)]
        print(f"{m} model(s): eager / fused: wall {statistics.median(a / b for a, b in zip(eager[0], fused[0])):.2f}x, "
              f"fused / fused step: wall {statistics.median(a / b for a, b in zip(fused[0], step[0])):.2f}x")


if __name__ == "__main__":
    main()
