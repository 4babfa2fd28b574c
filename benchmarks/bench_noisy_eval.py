"""Benchmark: noisy evaluation of one trained 6-qubit student on 100 test samples (FakeSherbrooke).

Paths timed, all with the same FakeSherbrooke noise model, the same ISA circuit (transpiled once,
optimization level 1, fixed seed) and 1024 shots:

* ``runtime_local`` - qiskit-ibm-runtime SamplerV2 in local testing mode (``ibm`` profile);
* ``aer_sampler_default`` - Aer SamplerV2 on the full-width ISA circuit, Aer's default options;
* ``aer_sampler``   - the same with experiments run in parallel (``aer`` profile, ``fast_eval: false``);
* ``aer_fast``      - density-matrix simulation of the active qubits only, all 100 samples as
  parameter bindings of one Aer run, exact probabilities then seeded multinomial shots
  (``aer`` profile, ``fast_eval: true``, the default);
* ``exact``         - the noiseless engine, for reference.

One-off setup (noise model of the 127-qubit device, transpilation, compaction) is cached per
process and reported separately. The fast path is validated against the Aer sampler: the mean
squared z-score of their read-out probabilities must be about 1 (shot noise only).

Run:  .venv/bin/python benchmarks/bench_noisy_eval.py [--model q2] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from qkd_qiskit.backends import get_backend, load_profile, probs_to_readouts
from qkd_qiskit.data import load_dataset
from qkd_qiskit.distill import TrainSettings, train_ensemble
from qkd_qiskit.models import build_model


def trained_student(model: str, epochs: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """A 6-qubit student trained briefly on the exact engine; returns (net, x_test, y_test)."""
    data = load_dataset("xor", n_samples=1000, n_bits=64, seed=0)
    net = build_model(model, data.n_features, data.n_classes, [torch.Generator().manual_seed(0)], layers=5)
    train_ensemble(net, data.x_train, data.y_train, data.x_val, data.y_val, [0],
                   TrainSettings(lr=0.1, max_epochs=epochs, patience=epochs), progress=False)
    return net, data.x_test, data.y_test


def timed(fn, repeat: int) -> tuple[object, list[float]]:
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="q2")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--shots", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-runtime", action="store_true", help="skip the slow Runtime local-mode path")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args()

    net, x, y = trained_student(args.model, args.epochs)
    student = net.quantum.student
    w = net.quantum.weights[0].detach().double().numpy()
    angles = np.asarray(student.input_angles(x.astype(np.float64)))
    base = load_profile("aer-fake-sherbrooke")
    fast = get_backend(base.model_copy(update={"shots": args.shots}))
    plain = get_backend(base.model_copy(update={"shots": args.shots, "fast_eval": False}))
    runtime = get_backend(load_profile("ibm-local-fake-sherbrooke").model_copy(update={"shots": args.shots}))
    results: dict[str, dict] = {}

    t0 = time.perf_counter()
    fast.noise_model, fast.transpiled(student), fast.compacted(student)
    setup = time.perf_counter() - t0
    plain._cache.update({k: v for k, v in fast._cache.items()})
    runtime.transpiled(student)
    print(f"{args.model}: {len(x)} test samples, {args.shots} shots, FakeSherbrooke; one-off setup "
          f"(noise model, transpile, compaction) {setup:.2f} s; ISA depth {fast.transpiled(student).depth}, "
          f"2q gates {fast.transpiled(student).two_qubit_gates}, active qubits {list(fast.compacted(student).physical)}")

    exact, t = timed(lambda: get_backend("statevector").readouts(student, w, angles), args.repeat)
    results["exact"] = {"seconds": t}
    out_fast, t = timed(lambda: fast.readouts(student, w, angles, seed=1), args.repeat)
    results["aer_fast"] = {"seconds": t}
    from qiskit_aer.primitives import SamplerV2

    from qkd_qiskit.backends import bindings, bits_to_probs

    isa = fast.transpiled(student).circuit
    default = SamplerV2(default_shots=args.shots, seed=1, options={"backend_options": {"noise_model": fast.noise_model}})
    _, t = timed(lambda: bits_to_probs(student, default.run([(isa, bindings(isa, student, w, angles))]).result()[0]
                                       .data.meas), args.repeat)
    results["aer_sampler_default"] = {"seconds": t}
    probs_plain, t = timed(lambda: plain.sampler_probs(student, w, angles, seed=1), args.repeat)
    results["aer_sampler"] = {"seconds": t}
    if not args.skip_runtime:
        _, t = timed(lambda: runtime.readouts(student, w, angles), 1)
        results["runtime_local"] = {"seconds": t}

    probs_fast = fast.compacted(student).probabilities(student, w, angles)
    z = (probs_plain - probs_fast) / np.sqrt(probs_fast * (1 - probs_fast) / args.shots + 1e-12)
    head = net.head
    def f1(out: np.ndarray) -> float:
        from qkd_qiskit.distill import classification_metrics
        with torch.no_grad():
            logits = head(torch.as_tensor(out, dtype=torch.float32)[None])[0]
        return classification_metrics(y, logits.argmax(-1).numpy(), 3)["f1_macro"]

    check = {"mean_z2_fast_vs_sampler": float((z**2).mean()), "max_abs_z": float(np.abs(z).max()),
             "f1_exact": f1(exact), "f1_aer_fast": f1(out_fast),
             "f1_aer_sampler": f1(probs_to_readouts(student, probs_plain)),
             "readout_mae_fast_vs_exact": float(np.abs(out_fast - exact).mean())}
    print(f"{'path':<21}{'best_s':>9}{'all runs (s)':>28}")
    for name, r in results.items():
        print(f"{name:<21}{min(r['seconds']):>9.2f}{'  ' + ', '.join(f'{s:.2f}' for s in r['seconds']):>28}")
    print("validation:", ", ".join(f"{k}={v:.4f}" for k, v in check.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "shots": args.shots, "setup_seconds": setup, "paths": results,
                       "validation": check, "machine": platform.platform(),
                       "torch_threads": torch.get_num_threads()}, f, indent=2)


if __name__ == "__main__":
    main()
