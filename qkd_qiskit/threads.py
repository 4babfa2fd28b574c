"""The torch thread policy of a command: one home for ``--threads`` of ``run``, ``reproduce``, ``evaluate``.

Every training or evaluation tensor of this package is small (a 6-qubit state of a batch of 32 is
2,048 amplitudes), so torch's intra-op threads have almost nothing to share and a lot to wait
for: with torch's default of one thread per core, a thread that loses its core to another process
stalls every op of the others. Measured on the 2-core development machine (``benchmarks/
bench_threads.py``, README "Thread policy"): one thread is as fast as two on an idle machine and
several times faster when another process keeps a core busy, so :data:`DEFAULT_THREADS` is 1.

``threads=0`` keeps torch's own default (one thread per core, or ``OMP_NUM_THREADS``).

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> apply_threads(1)["intra_op"]
    1
    >>> torch.get_num_threads()
    1
    >>> _ = apply_threads(before)
"""

from __future__ import annotations

DEFAULT_THREADS = 1
"""torch intra-op threads of a command unless ``--threads`` says otherwise (see the module docstring)."""

DEFAULT_WORKERS = 1
"""Worker processes of the local executor unless ``--workers`` says otherwise (docs/engine_speed.md,
'Thread policy', has the measurements behind it)."""

__all__ = ["DEFAULT_THREADS", "DEFAULT_WORKERS", "apply_threads", "thread_info"]


def apply_threads(threads: int | None = DEFAULT_THREADS) -> dict:
    """Set torch's intra-op threads (and, when still possible, its inter-op threads) to ``threads``.

    Call it at command start, before any tensor work: torch fixes its inter-op pool at the first
    parallel op and refuses a later change, which is then kept as it is (reported, not an error).
    ``None`` or 0 leaves torch's defaults. Returns :func:`thread_info` (recorded in run manifests).
    """
    import torch

    if threads is not None and threads < 0:
        raise ValueError(f"--threads: must be >= 0 (0 = torch's default), got {threads}")
    if threads:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # the inter-op pool already started in this process
            pass
    return thread_info()


def thread_info() -> dict:
    """The torch threads this process uses now: ``{"intra_op": n, "interop": n}``."""
    import torch

    return {"intra_op": torch.get_num_threads(), "interop": torch.get_num_interop_threads()}
