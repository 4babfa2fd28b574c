"""Options several ``qkd`` commands share (threads, executor, workers, backend, students) and their
checks, made before any work: a bad value is one line and exit code 2."""

from __future__ import annotations

import typer

from .app import fail


THREADS_HELP = ("torch threads of this process and of each --workers process (0 = torch's default, one per "
                "core). 1 is fastest for these small tensors and does not collapse when other processes share the "
                "cores (README, 'Thread policy').")


def threads_option() -> object:
    from ..threads import DEFAULT_THREADS

    return typer.Option(DEFAULT_THREADS, "--threads", min=0, help=THREADS_HELP)


def set_threads(threads: int) -> None:
    """Apply ``--threads`` at command start (:func:`qkd_qiskit.threads.apply_threads`)."""
    from ..threads import apply_threads

    apply_threads(threads)


def executor_option() -> object:
    return typer.Option("local", "--executor", help="Where the work runs: local (this process) or ray (a Ray "
                        "cluster; pip install \"qkd-qiskit[ray]\"). Results are the same (README, 'Running on a "
                        "Ray cluster').")


def address_option() -> object:
    return typer.Option(None, "--address", help="--executor ray: the cluster's address, or auto (default: RAY_ADDRESS, "
                        "else a cluster started here, else a local Ray instance on this machine's cores).")


def chunk_size_option() -> object:
    return typer.Option(None, "--chunk-size", min=1, help="Units per task, batched together (default: all units "
                        "of one model). A started run keeps its chunk size.")


def workers_option() -> object:
    return typer.Option(None, "--workers", help="--executor local: worker processes training (or evaluating) "
                        "independent groups at once, each with --threads torch threads (default 1: in this "
                        "process). Results are bit for bit the same (README, 'Thread policy').")


def check_executor_options(executor: str, address: str | None, chunk_size: int | None, workers: int | None = None,
                    threads: int | None = None, training: bool = True):  # noqa: ANN202 - object or name
    """``--executor`` / ``--address`` / ``--chunk-size`` / ``--workers`` as one line and exit 2,
    before any work. Returns what the library call takes as ``executor``: the local executor object
    (for ``training`` commands with ``--workers`` > 1 the first worker starts now, importing the
    training code in the background while the teacher trains here; :func:`close_executor` ends them), or
    the name ``ray`` (started by the library after its own checks)."""
    from ..executors import check_executor, make_executor
    from ..threads import DEFAULT_THREADS

    try:
        check_executor(executor, address, chunk_size, workers)
    except ValueError as err:
        fail(str(err))
    if executor != "local":
        return executor
    return make_executor(executor, address, chunk_size, workers, DEFAULT_THREADS if threads is None else threads,
                         preload=["qkd_qiskit.experiments"] if training else ())


def close_executor(executor) -> None:  # noqa: ANN001
    """End the local executor's worker processes (a name: nothing was made here)."""
    if not isinstance(executor, str):
        executor.close()


BACKEND_HELP = "Backend profile: a YAML file or a shipped name (backends/<name>.yaml)."
STUDENTS_HELP = "Comma-separated student entry names (default: every quantum student of the run)."
MAX_SAMPLES_HELP = "Use a seeded, class-stratified subset of this many test samples (default: all)."


def names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None
