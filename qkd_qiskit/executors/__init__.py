"""Where the work of a run, evaluation or calibration runs: in this process or on a Ray cluster.

The driver (``qkd run``, ``qkd evaluate``, ...) plans the work, cuts it into chunks of units, hands
each chunk to an executor as a picklable :class:`Task` and writes every result itself, atomically,
as it arrives; so resume, reports and every output file are the same whichever executor ran them.

- :class:`LocalExecutor` (``--executor local``, the default): in this process, or in ``--workers N``
  worker processes on this machine (:mod:`~qkd_qiskit.executors.pool`); no extra dependency.
- :class:`RayExecutor` (``--executor ray [--address ADDR]``): Ray tasks, retried when a worker dies.

Example:
    >>> make_executor("local", chunk_size=6).describe()["chunk_size"]
    6
"""

from __future__ import annotations

from typing import Sequence

from ..threads import DEFAULT_THREADS, DEFAULT_WORKERS
from .base import Executor, Outcome, Task, TasksFailed, chunk_name, chunked, one_line, run_tasks
from .local import LocalExecutor
from .pool import TaskError, WorkerPool
from .ray import NEEDS_RAY, RayExecutor, check_address, import_ray

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "NEEDS_RAY", "Executor", "LocalExecutor", "Outcome", "RayExecutor", "Task", "TaskError",
           "TasksFailed", "WorkerPool", "check_executor", "chunk_name", "chunked", "make_executor", "one_line", "run_tasks"]


def check_executor(name: str, address: str | None = None, chunk_size: int | None = None,
                   workers: int | None = None) -> None:
    """Everything about the executor options a user can get wrong, as one ValueError line, before
    any work (Ray is not started here).

    Example:
        >>> check_executor("slurm")
        Traceback (most recent call last):
        ...
        ValueError: --executor: unknown executor 'slurm' (known: local, ray)
    """
    if name not in EXECUTORS:
        raise ValueError(f"--executor: unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"--chunk-size: expected a positive number of units, got {chunk_size}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: expected a positive number of worker processes, got {workers}")
    if workers is not None and name != "local":
        raise ValueError("--workers: only used with --executor local (Ray gives each task a CPU of the cluster)")
    if address is not None and name != "ray":
        raise ValueError("--address: only used with --executor ray")
    if name == "ray":
        import_ray()
        check_address(address)


def make_executor(name: str = "local", address: str | None = None, chunk_size: int | None = None,
                  workers: int | None = None, threads: int | None = DEFAULT_THREADS,
                  preload: Sequence[str] = ()) -> Executor:
    """The executor called ``name`` (checked by :func:`check_executor`); ``workers`` (default
    :data:`~qkd_qiskit.threads.DEFAULT_WORKERS`) and ``threads`` (torch threads of each worker)
    and ``preload`` (modules the workers import before the first task) are the local executor's."""
    check_executor(name, address, chunk_size, workers)
    if name == "ray":
        return RayExecutor(address, chunk_size)
    return LocalExecutor(chunk_size, DEFAULT_WORKERS if workers is None else workers, threads, preload)
