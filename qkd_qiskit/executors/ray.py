"""Tasks on a Ray cluster: an existing one (``address``) or a local instance started here.

Each task runs as a Ray task of one CPU. Ray re-runs a task whose worker died (killed, out of
memory, node lost) up to ``max_retries`` times; a task that raises is not retried (it would fail
the same way) and comes back as an :class:`~qkd_qiskit.executors.base.Outcome` with its error.
Results travel back to the driver through Ray's object store: no shared file system is needed,
but every node needs this package (same version) and its dependencies installed.

Ray is optional (``pip install "qkd-qiskit[ray]"``); it is imported only when an executor is made.

Example:
    >>> ex = RayExecutor(num_cpus=2)  # doctest: +SKIP
    >>> [o.result for o in ex.run([Task("t", abs, -1)])]  # doctest: +SKIP
    [1]
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Iterator, Sequence

from .base import Outcome, Task, one_line

NEEDS_RAY = '--executor ray needs Ray: pip install "qkd-qiskit[ray]"'


def import_ray() -> Any:
    """The ``ray`` module, or a ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(NEEDS_RAY) from None
    return ray


def check_address(address: str | None, timeout: float = 3.0) -> None:
    """A ValueError naming ``--address`` unless it is ``None``, ``auto``, ``local`` or a ``HOST:PORT``
    (optionally ``ray://HOST:PORT``) that accepts a TCP connection within ``timeout`` seconds: Ray
    itself waits minutes for an address where nothing answers.

    Example:
        >>> check_address("head-node")
        Traceback (most recent call last):
        ...
        ValueError: --address: expected HOST:PORT (or auto), got 'head-node'
    """
    if address in (None, "auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address: expected HOST:PORT (or auto), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ValueError(f"--address: no Ray cluster answers at {address} ({err.strerror or err})") from None


def _call(fn: Callable[[Any], Any], payload: Any) -> Any:
    """What a Ray worker runs: the task's function on its payload."""
    return fn(payload)


WORKER_ENV = {"RAY_worker_niceness": "0"}
"""Environment of this job's Ray workers. Ray starts its workers at niceness 15 by default, to keep
its own raylet and GCS responsive; on a machine other jobs keep busy that starves them (measured: a
training task got 3-5 % of a core next to two busy loops at normal priority, and the executor tests
ran past 11 minutes instead of 3). Niceness 0 makes a task compete for the cores like the local
executor's processes do; Ray's job manager sets the same variable for its job supervisors."""


class RayExecutor:
    """Sends tasks to Ray and yields outcomes in the order they finish.

    ``address``: a running cluster (``ray start --head`` prints it; ``auto`` finds the local one);
    ``None``: reuse a Ray already initialised in this process, else Ray's own search
    (``RAY_ADDRESS``, the latest cluster started on this machine), else a local instance with
    ``num_cpus`` CPUs (default: all). :meth:`close` disconnects only what it connected here
    (a local instance it started stops; a cluster keeps running)."""

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None, chunk_size: int | None = None, max_retries: int = 3,
                 num_cpus: int | None = None):
        self.ray = import_ray()
        self.address, self.chunk_size, self.max_retries = address, chunk_size, max_retries
        self.started = not self.ray.is_initialized()
        if self.started:
            try:
                self.ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                              log_to_driver=False, logging_level=logging.WARNING,
                              runtime_env={"env_vars": WORKER_ENV})
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ValueError(f"--address: cannot connect to a Ray cluster at {address} ({one_line(err)})") from None

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        remote = self.ray.remote(_call).options(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)
        refs = {remote.remote(t.fn, t.payload): t for t in tasks}
        waiting = list(refs)
        while waiting:
            done, waiting = self.ray.wait(waiting, num_returns=1)
            task = refs[done[0]]
            try:
                yield Outcome(task, self.ray.get(done[0]))
            except self.ray.exceptions.RayError as err:
                yield Outcome(task, error=one_line(getattr(err, "cause", None) or err))

    def describe(self) -> dict:
        """The executor and the cluster's resources (CPUs, GPUs, memory, live nodes) for the manifest."""
        total = self.ray.cluster_resources()
        nodes = sum(1 for n in self.ray.nodes() if n.get("Alive"))
        return {"executor": self.name, "chunk_size": self.chunk_size, "address": self.address,
                "resources": {k: total[k] for k in ("CPU", "GPU", "memory") if k in total}, "nodes": nodes,
                "ray_version": self.ray.__version__, "max_retries": self.max_retries}

    def close(self) -> None:
        """Shut down the local instance this executor started (a cluster it joined keeps running)."""
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
