"""Worker processes of the local executor (``--workers N``): up to N Python processes, each
running one task at a time under the command's torch thread policy.

Hand-written (one :class:`multiprocessing.Process` and one pipe per worker) because the standard
pools cannot keep the promises of an executor: a worker that dies (killed, out of memory) breaks
every pending future of :class:`concurrent.futures.ProcessPoolExecutor` and leaves the task of
:class:`multiprocessing.pool.Pool` waiting forever, and neither stops a running task on Ctrl-C
through a public API. Here:

- a task that raises fails alone: its one-line error comes back and the worker goes on;
- a worker that dies fails only its own task, which is run again on a fresh worker up to
  ``max_retries`` times (it was never written: the driver writes every result);
- :meth:`WorkerPool.close` tells idle workers to exit and kills busy ones (the driver's Ctrl-C
  ends them; finished results are already on disk, so a resume loses nothing); Ctrl-C itself is
  ignored by workers, and a worker whose driver died (``kill -9``) exits by itself;
- workers are forked from a *fork server* (``forkserver`` start method; ``spawn`` where there is
  none): a clean process that imports the tasks' module (torch, Qiskit, scikit-learn: 5-10 s on a
  busy 2-core machine) and :mod:`~qkd_qiskit.executors.warmup` once and never runs a torch op, so
  every worker starts in milliseconds, warm, with no torch or OpenMP state copied from the
  driver. Workers start lazily, only as many as tasks are waiting (or one at once:
  :meth:`WorkerPool.start`), and serve every later task of the command (a sweep's points share them).

Example:
    >>> pool = WorkerPool(2)
    >>> futures = [pool.submit(abs, -3), pool.submit(abs, 4)]
    >>> [f.result(timeout=120) for f in futures]
    [3, 4]
    >>> pool.submit(int, "x").exception(timeout=120)
    TaskError("ValueError: invalid literal for int() with base 10: 'x'")
    >>> pool.close()
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Sequence

from ..threads import apply_threads
from .base import one_line

START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
"""How workers start (see the module docstring): never a plain ``fork`` of the driver, whose torch
may already run OpenMP threads."""


class TaskError(RuntimeError):
    """A task failed in a worker (it raised, its worker died too often, or the pool was closed):
    the message is the one line to report."""


def _exit_with_parent() -> None:
    """Wait for the driver's end, then end this worker (a ``kill -9`` of the driver leaves no orphan)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)  # at once: its task's result has nobody to go to


def _serve(conn: Connection, threads: int | None) -> None:
    """A worker's life: apply the thread policy, then run ``(fn, payload)`` jobs until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the driver, which ends the workers
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    apply_threads(threads)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, payload = job
        try:
            reply = ("ok", fn(payload))
        except Exception as err:  # noqa: BLE001 - reported as this task's one-line error; the worker goes on
            reply = ("error", one_line(err))
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - a result that cannot be pickled
            conn.send(("error", one_line(err)))


class _Worker:
    """One worker process, its end of the pipe, and the job it runs (None: idle)."""

    def __init__(self, ctx: Any, threads: int | None):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, threads), daemon=True, name="qkd-worker")
        self.process.start()
        child.close()
        self.job: list | None = None  # [future, fn, payload, attempts]

    def stop(self) -> None:
        """Tell an idle worker to exit (a clean exit: nothing leaks); kill it if it does not."""
        if self.job is None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class WorkerPool:
    """Up to ``workers`` processes running submitted ``fn(payload)`` calls; thread-safe (the points
    of a sweep submit from several driver threads). See the module docstring."""

    def __init__(self, workers: int, threads: int | None = None, max_retries: int = 1):
        self.workers, self.threads, self.max_retries = workers, threads, max_retries
        self.started = 0  # worker processes started so far (replacements included)
        self._ctx = multiprocessing.get_context(START_METHOD)
        self._queue: deque[list] = deque()
        self._pool: list[_Worker] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._starting = False  # the first worker is being started in the background

    def start(self, preload: Sequence[str] = ()) -> None:
        """Start the first worker now, in a background thread, its fork server importing the
        modules ``preload`` (those of the tasks to come): the imports then overlap with the
        driver's own start instead of delaying the first task. :meth:`close` does not wait for it."""
        with self._lock:
            if self.started or self._closed:
                return
            self._starting = True
            self._set_preload(preload)
            self.started += 1
        threading.Thread(target=self._start_first, daemon=True, name="qkd-pool-start").start()

    def _start_first(self) -> None:
        worker = _Worker(self._ctx, self.threads)  # slow (the fork server's imports): outside the lock
        with self._lock:
            self._starting = False
            if not self._closed:
                self._pool.append(worker)
                self._wake_w.send(None)
                return
        worker.stop()

    def _set_preload(self, modules: Sequence[str]) -> None:
        if START_METHOD == "forkserver":
            self._ctx.set_forkserver_preload([*modules, f"{__package__}.warmup"])

    def _add_worker(self, modules: Sequence[str]) -> _Worker:
        """Start a worker (the first one also starts the fork server, importing ``modules``)."""
        if not self.started:
            self._set_preload(modules)
        self._pool.append(_Worker(self._ctx, self.threads))
        self.started += 1
        return self._pool[-1]

    def submit(self, fn: Callable[[Any], Any], payload: Any) -> Future:
        """Queue ``fn(payload)``; its Future holds the result or a :class:`TaskError`."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise TaskError("the worker pool is closed")
            self._queue.append([future, fn, payload, 0])
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, daemon=True, name="qkd-pool")
                self._thread.start()
            self._wake_w.send(None)
        return future

    def _assign(self) -> None:
        """Give queued jobs to idle workers, starting workers (up to ``workers``) while jobs wait."""
        idle = [w for w in self._pool if w.job is None]
        while self._queue:
            if not idle and len(self._pool) + self._starting < self.workers:
                idle.append(self._add_worker([self._queue[0][1].__module__]))
            if not idle:
                return
            job = self._queue.popleft()
            if job[3] == 0 and not job[0].set_running_or_notify_cancel():
                continue  # cancelled before it started
            try:
                idle[-1].conn.send((job[1], job[2]))
            except Exception as err:  # noqa: BLE001 - a payload that cannot be pickled fails its task only
                job[0].set_exception(TaskError(one_line(err)))
                continue
            idle.pop().job = job

    def _finish(self, worker: _Worker) -> None:
        """Collect the reply of ``worker``'s job, or handle its death (retry on a fresh worker)."""
        future, _, _, attempts = worker.job
        try:
            status, value = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            self._pool.remove(worker)
            if attempts < self.max_retries:
                self._queue.appendleft([*worker.job[:3], attempts + 1])
            else:
                future.set_exception(TaskError(f"worker process died (exit code {worker.process.exitcode})"))
            return
        worker.job = None
        if status == "ok":
            future.set_result(value)
        else:
            future.set_exception(TaskError(value))

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._assign()
            busy = [w for w in self._pool if w.job is not None]
            ready = wait([self._wake_r, *(w.conn for w in busy), *(w.process.sentinel for w in busy)])
            while self._wake_r.poll():
                self._wake_r.recv()
            with self._lock:
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        self._finish(w)

    def close(self) -> None:
        """End every worker (idle ones exit cleanly, busy ones are killed); tasks not finished fail
        with a :class:`TaskError` (idempotent)."""
        with self._lock:
            self._closed = True
            self._wake_w.send(None)
        if self._thread is not None:
            self._thread.join()
        for w in self._pool:
            w.stop()
            if w.job is not None and not w.job[0].done():
                w.job[0].set_exception(TaskError("not finished: the worker pool was closed"))
        for job in self._queue:
            if not job[0].done() and (job[3] or job[0].set_running_or_notify_cancel()):
                job[0].set_exception(TaskError("not started: the worker pool was closed"))
        self._pool, self._queue = [], deque()
