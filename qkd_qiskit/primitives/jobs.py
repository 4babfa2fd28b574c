"""The job returned by the engine primitives and gradients: :class:`DoneJob`, already finished.

The engine answers a primitive call in about a millisecond, so ``run`` computes the result
synchronously (no thread pool) and wraps it in a job that is done from the start.

Example:
    >>> job = DoneJob(42)
    >>> job.result(), job.status().name, job.done()
    (42, 'DONE', True)
"""

from __future__ import annotations

import uuid
from typing import Any

from qiskit.primitives import BasePrimitiveJob
from qiskit.providers import JobStatus

__all__ = ["DoneJob"]


class DoneJob(BasePrimitiveJob):
    """A job that already ran synchronously (no thread pool: the engine call is ~1 ms)."""

    def __init__(self, result: Any):
        super().__init__(job_id=str(uuid.uuid4()))
        self._result = result

    def result(self) -> Any:
        return self._result

    def status(self) -> JobStatus:
        return JobStatus.DONE

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def in_final_state(self) -> bool:
        return True

    def cancel(self) -> None:
        return None
