"""The thread policy under load: wall time of a small ``qkd run`` per ``--threads`` with and without busy processes.

Each setting runs ``qkd run`` as a fresh subprocess (``OMP_NUM_THREADS`` removed from its
environment, so ``--threads`` alone decides) on :data:`LOAD_CONFIG`, a small XOR run with a 6-qubit
HEA student (KD off and on, a few seeds and epochs). The competing load is started by the benchmark
itself: ``busy`` Python processes spinning ``while True: pass``, each ended by its own handle when
the setting is timed. CPU time is the children's user + system time of that ``qkd run``.

Example:
    >>> rows = thread_policy(threads=(1, 2), busy=(0, 1))   # doctest: +SKIP
    >>> [(r["threads"], r["busy"], round(r["wall_s"])) for r in rows]   # doctest: +SKIP
    [(1, 0, 6), (2, 0, 6), (1, 1, 8), (2, 1, 45)]
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import yaml

LOAD_CONFIG = {
    "name": "thread_load",
    "data": {"name": "xor", "n_samples": 1000, "n_bits": 64, "seed": 0},
    "seeds": 4,
    "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 8, "patience": 50}},
    "students": [{"model": "hea", "kd": [False, True]}],
    "student_train": {"lr": 0.1, "max_epochs": 8, "patience": 50, "batch_size": 32},
}
"""The timed run: teacher (4 seeds) + a 6-qubit HEA student with KD off and on, 8 epochs each."""

BUSY_CODE = "while True: pass"


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """``n`` Python processes that each keep one core busy, ended (by their own handle) on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_CODE]) for _ in range(n)]
    try:
        time.sleep(0.3 if n else 0)  # let them reach their loop
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def time_run(threads: int, out: Path, config: Path) -> dict:
    """Wall and CPU seconds of ``qkd run CONFIG --out OUT --threads N`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "qkd_qiskit.cli", "run", str(config), "--out", str(out),
           "--threads", str(threads), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def thread_policy(threads: Sequence[int] = (1, 2), busy: Sequence[int] = (0, 1)) -> list[dict]:
    """Time :data:`LOAD_CONFIG` for every ``--threads`` value (0 = torch's default) and busy count."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="qkd-threads-") as tmp:
        config = Path(tmp) / "thread_load.yaml"
        config.write_text(yaml.safe_dump(LOAD_CONFIG))
        for n_busy in busy:
            for n_threads in threads:
                with busy_processes(n_busy):
                    res = time_run(n_threads, Path(tmp) / f"run-{n_threads}-{n_busy}", config)
                rows.append({"threads": n_threads, "busy": n_busy, "cpu_count": os.cpu_count(), **res})
    return rows


def format_thread_policy(rows: list[dict]) -> str:
    """The rows as a small table, each wall time also as a ratio to ``--threads 1`` at the same load."""
    base = {r["busy"]: r["wall_s"] for r in rows if r["threads"] == 1}
    lines = [f"{'--threads':>9s} {'busy procs':>10s} {'wall s':>8s} {'CPU s':>8s} {'x threads 1':>12s}"]
    for r in rows:
        label = str(r["threads"]) if r["threads"] else f"0 ({r['cpu_count']})"
        ratio = r["wall_s"] / base[r["busy"]] if r["busy"] in base else float("nan")
        lines.append(f"{label:>9s} {r['busy']:>10d} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {ratio:12.2f}")
    return "\n".join(lines)
