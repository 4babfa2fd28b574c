"""Noisy evaluation speed: the PTM path (qkd_qiskit.noisy.sampled) vs Aer's density-matrix path
(backends.Compacted.probabilities) on the same compact ISA circuit, per sample, in one process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ptm_eval.py [--samples 24] [--reps 3]

For each student (6 qubits, 5 layers) and way (``whole``: an exact-trained student's ISA circuit,
``split``: a noise-aware student's circuit with its embedding barrier), the two paths run
interleaved ``reps`` times on fresh weights (no memo hit); printed: medians in ms per sample, the
ratio and the largest probability difference. One-off costs (transpiling, building the PTM tables)
are excluded and printed apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from qkd_qiskit.backends import get_backend, load_profile
from qkd_qiskit.circuits import build_student
from qkd_qiskit.noisy import PtmSampler, barrier_student


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="aer-fake-kingston")
    ap.add_argument("--models", default="hea,q2")
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    backend = get_backend(load_profile(args.profile))
    rng = np.random.default_rng(0)
    print(f"{'student':<12}{'way':<7}{'one-off s':>10}{'PTM ms/sample':>15}{'Aer ms/sample':>15}{'ratio':>8}{'max |dp|':>10}")
    for model in args.models.split(","):
        for way in ("whole", "split"):
            st = build_student(model, n_qubits=6, layers=5, n_features=64)
            st = barrier_student(st) if way == "split" else st
            a = st.input_angles(rng.integers(0, 2, (args.samples, 64)) + 0.01)
            t0 = time.perf_counter()
            sampler = PtmSampler(st, backend, whole=way == "whole")
            cmp = backend.compacted(st)
            one_off = time.perf_counter() - t0
            ptm, aer, diff = [], [], 0.0
            for _ in range(args.reps):
                w = rng.uniform(0, 2 * np.pi, len(st.weight_params))
                t = time.perf_counter(); p = sampler.probabilities(w, a); ptm.append(time.perf_counter() - t)
                t = time.perf_counter(); q = cmp.probabilities(st, w, a); aer.append(time.perf_counter() - t)
                diff = max(diff, float(np.abs(p - q).max()))
            mp, ma = (1e3 * statistics.median(v) / args.samples for v in (ptm, aer))
            print(f"{model:<12}{way:<7}{one_off:>10.1f}{mp:>15.2f}{ma:>15.2f}{ma / mp:>8.1f}{diff:>10.1e}")


if __name__ == "__main__":
    main()
