"""Each worker process applies the command's --threads policy (torch's own count, read in the worker)."""

from qkd_qiskit.executors import LocalExecutor, Task
from qkd_qiskit.threads import apply_threads


def test_workers_run_with_the_given_torch_threads():
    for threads in (1, 2):
        ex = LocalExecutor(workers=2, threads=threads)
        try:  # apply_threads(None) changes nothing and reports the worker's torch threads
            got = [o.result for o in ex.run([Task("a", apply_threads, None), Task("b", apply_threads, None)])]
        finally:
            ex.close()
        assert [g["intra_op"] for g in got] == [threads, threads]
