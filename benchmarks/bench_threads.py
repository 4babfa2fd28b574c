"""The thread and worker policy under load: wall time of real commands with and without busy processes.

Run: ``.venv/bin/python benchmarks/bench_threads.py [--threads 1,2] [--busy 0,1] [--json]`` (the
``--threads`` table: a small ``qkd run`` per value, see :mod:`qkd_qiskit.bench.load`), or
``.venv/bin/python benchmarks/bench_threads.py --workers 1,2 [--workloads xor,quick] [--busy 0,1]``
(the ``--workers`` table, one torch thread per process): ``qkd run configs/xor_classical.yaml``
(``xor``: a teacher then one student, so never two tasks at once) and ``qkd reproduce piperno2024
--quick`` (``quick``: a teacher, then 8 students side by side), each in a fresh process. The busy
processes (``while True: pass``) are started and ended by the benchmark itself. Each row also
gives the 1-minute load average just before it started (other users of the machine) and its
wall time as a ratio to ``--workers 1`` at the same load and to its own quiet (0 busy) time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qkd_qiskit.bench.load import busy_processes, format_thread_policy, thread_policy

WORKLOADS = {"xor": ["run", "xor_classical"], "quick": ["reproduce", "piperno2024", "--quick"]}
"""The timed commands (``--out`` and the options are added)."""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def time_command(args: list[str], out: Path) -> dict:
    """Wall and CPU seconds (the child's user + system) of ``qkd ARGS --out OUT`` in a fresh process,
    with ``OMP_NUM_THREADS`` removed (``--threads`` decides)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "qkd_qiskit.cli", *args, "--out", str(out), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "load_before": load}


def worker_policy(workers: list[int], busy: list[int], workloads: list[str]) -> list[dict]:
    """One row per (workload, busy processes, ``--workers``), each timed once in a fresh folder."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="qkd-workers-") as tmp:
        for name in workloads:
            for n_busy in busy:
                for n in workers:
                    with busy_processes(n_busy):
                        res = time_command([*WORKLOADS[name], "--threads", "1", "--workers", str(n)],
                                           Path(tmp) / f"{name}-{n}-{n_busy}")
                    rows.append({"workload": name, "workers": n, "busy": n_busy, **res})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def format_worker_policy(rows: list[dict]) -> str:
    """A markdown table: wall, CPU, x ``--workers 1`` at the same load, x its own quiet time."""
    base = {(r["workload"], r["busy"]): r["wall_s"] for r in rows if r["workers"] == 1}
    quiet = {(r["workload"], r["workers"]): r["wall_s"] for r in rows if r["busy"] == 0}
    lines = ["| workload | `--workers` | busy procs | load before | wall s | CPU s | x workers 1 | x quiet |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        w1 = base.get((r["workload"], r["busy"]))
        q = quiet.get((r["workload"], r["workers"]))
        lines.append(f"| {r['workload']} | {r['workers']} | {r['busy']} | {r['load_before']:.1f} | {r['wall_s']:.1f} "
                     f"| {r['cpu_s']:.1f} | {r['wall_s'] / w1:.2f} | {r['wall_s'] / q:.2f} |" if w1 and q else
                     f"| {r['workload']} | {r['workers']} | {r['busy']} | {r['load_before']:.1f} | {r['wall_s']:.1f} "
                     f"| {r['cpu_s']:.1f} | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="--threads values (0 = torch's default)")
    parser.add_argument("--workers", type=_ints, default=None, help="time these --workers values instead")
    parser.add_argument("--workloads", default="xor,quick", help=f"with --workers: any of {', '.join(WORKLOADS)}")
    parser.add_argument("--busy", type=_ints, default=[0, 1], help="numbers of competing busy processes")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args()
    if args.workers is not None:
        rows = worker_policy(args.workers, args.busy, [w for w in args.workloads.split(",") if w])
        print(json.dumps(rows, indent=2) if args.json else format_worker_policy(rows))
        return
    rows = thread_policy(args.threads, args.busy)
    print(json.dumps(rows, indent=2) if args.json else format_thread_policy(rows))


if __name__ == "__main__":
    main()
