"""The local executor: tasks run in this process, one after the other (``--workers 1``, the
default), or in ``workers`` worker processes on this machine (:mod:`~qkd_qiskit.executors.pool`).

A task's result is the same either way: every task seeds its own generators and each worker runs
one task at a time under the same torch thread policy (``threads``), so ``--workers 2`` writes
bit for bit the files of ``--workers 1`` (tests/executors/test_worker_processes.py). The driver
writes each result as it comes back, in the order the tasks finish.

Example:
    >>> ex = LocalExecutor(chunk_size=4)
    >>> [o.result for o in ex.run([Task("double", abs, -2), Task("neg", abs, 3)])]
    [2, 3]
    >>> ex.describe()["executor"], ex.describe()["workers"]
    ('local', 1)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import as_completed
from typing import Iterator, Sequence

from ..threads import DEFAULT_THREADS, DEFAULT_WORKERS
from .base import Outcome, Task, one_line
from .pool import TaskError, WorkerPool


class LocalExecutor:
    """Runs tasks on this machine; an exception (or a dead worker) fails only its own task.

    ``workers`` > 1: worker processes, started at the first task and kept until :meth:`close`
    (several threads of the driver may call :meth:`run` at once: a sweep's points do). A lone task
    handed over by the main thread (a run's teacher, a one-student run) runs here instead: a worker
    could not run it sooner, and nothing else runs in this process meanwhile.
    ``threads``: torch threads of each worker (this process keeps its own setting).
    ``preload``: modules of the tasks to come; given, the first worker starts at once, in the
    background, importing them while this process still checks its inputs
    (:meth:`~qkd_qiskit.executors.pool.WorkerPool.start`)."""

    name = "local"

    def __init__(self, chunk_size: int | None = None, workers: int = DEFAULT_WORKERS,
                 threads: int | None = DEFAULT_THREADS, preload: Sequence[str] = ()):
        self.chunk_size, self.workers, self.threads = chunk_size, workers, threads
        self.pool = WorkerPool(workers, threads) if workers > 1 else None
        if self.pool is not None and preload:
            self.pool.start(preload)

    @property
    def in_process(self) -> bool:
        """Whether tasks run in this process (so their progress bars can be shown here)."""
        return self.pool is None

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        if self.pool is None or (len(tasks) == 1 and threading.current_thread() is threading.main_thread()):
            yield from self._run_here(tasks)
            return
        futures = {self.pool.submit(t.fn, t.payload): t for t in tasks}
        try:
            for future in as_completed(futures):
                err = future.exception()
                if err is None:
                    yield Outcome(futures[future], future.result())
                else:
                    yield Outcome(futures[future], error=str(err) if isinstance(err, TaskError) else one_line(err))
        finally:
            for future in futures:  # the caller stopped early: tasks not started yet are dropped
                future.cancel()

    @staticmethod
    def _run_here(tasks: Sequence[Task]) -> Iterator[Outcome]:
        for task in tasks:
            try:
                result = task.fn(task.payload)
            except Exception as err:  # noqa: BLE001 - reported with the task's name, the others go on
                yield Outcome(task, error=one_line(err))
            else:
                yield Outcome(task, result)

    def describe(self) -> dict:
        return {"executor": self.name, "chunk_size": self.chunk_size, "workers": self.workers,
                "worker_threads": self.threads, "resources": {"CPU": os.cpu_count()}}

    def close(self) -> None:
        """End the worker processes, if any (tasks still running fail; none are written)."""
        if self.pool is not None:
            self.pool.close()
