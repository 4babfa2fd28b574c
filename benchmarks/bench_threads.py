"""The thread policy under load: a small ``qkd run`` per ``--threads`` value, with and without busy processes.

Run: ``.venv/bin/python benchmarks/bench_threads.py [--threads 1,2] [--busy 0,1] [--json]``.
The busy processes (``while True: pass``) are started and ended by the benchmark itself; see
:mod:`qkd_qiskit.bench.load` for what is timed.
"""

from __future__ import annotations

import argparse
import json

from qkd_qiskit.bench.load import format_thread_policy, thread_policy


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="--threads values (0 = torch's default)")
    parser.add_argument("--busy", type=_ints, default=[0, 1], help="numbers of competing busy processes")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args()
    rows = thread_policy(args.threads, args.busy)
    print(json.dumps(rows, indent=2) if args.json else format_thread_policy(rows))


if __name__ == "__main__":
    main()
