"""Where the work of a run, evaluation or calibration runs: in this process or on a Ray cluster.

The driver (``qkd run``, ``qkd evaluate``, ...) plans the work, cuts it into chunks of units, hands
each chunk to an executor as a picklable :class:`Task` and writes every result itself, atomically,
as it arrives; so resume, reports and every output file are the same whichever executor ran them.

- :class:`LocalExecutor` (``--executor local``, the default): in this process, no extra dependency.
- :class:`RayExecutor` (``--executor ray [--address ADDR]``): Ray tasks, retried when a worker dies.

Example:
    >>> make_executor("local", chunk_size=6).describe()["chunk_size"]
    6
"""

from __future__ import annotations

from .base import Executor, Outcome, Task, TasksFailed, chunk_name, chunked, one_line, run_tasks
from .local import LocalExecutor
from .ray import NEEDS_RAY, RayExecutor, check_address, import_ray

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "NEEDS_RAY", "Executor", "LocalExecutor", "Outcome", "RayExecutor", "Task", "TasksFailed",
           "check_executor", "chunk_name", "chunked", "make_executor", "one_line", "run_tasks"]


def check_executor(name: str, address: str | None = None, chunk_size: int | None = None) -> None:
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
    if address is not None and name != "ray":
        raise ValueError("--address: only used with --executor ray")
    if name == "ray":
        import_ray()
        check_address(address)


def make_executor(name: str = "local", address: str | None = None, chunk_size: int | None = None) -> Executor:
    """The executor called ``name`` (checked by :func:`check_executor`)."""
    check_executor(name, address, chunk_size)
    if name == "ray":
        return RayExecutor(address, chunk_size)
    return LocalExecutor(chunk_size)
