"""Benchmark of the exact torch engine vs PennyLane and stock qiskit-machine-learning paths.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick] [--json] [--threads N] [--no-peers]``
(the same as ``qkd bench``); see :func:`qkd_qiskit.bench.run_bench` for what is measured.
"""

from __future__ import annotations

import argparse

from qkd_qiskit.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements, scaling up to 10 qubits")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-peers", action="store_true", help="skip the JAX-compiled peers")
    args = parser.parse_args()
    run_bench(quick=args.quick, json=args.json, threads=args.threads, peers=not args.no_peers)


if __name__ == "__main__":
    main()
