"""The embedded executor: every task runs in this process, one after the other (the default).

Example:
    >>> ex = LocalExecutor(chunk_size=4)
    >>> [o.result for o in ex.run([Task("double", abs, -2), Task("neg", abs, 3)])]
    [2, 3]
    >>> ex.describe()["executor"]
    'local'
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

from .base import Outcome, Task, one_line


class LocalExecutor:
    """Runs tasks in order in this process; an exception fails only its own task."""

    name = "local"

    def __init__(self, chunk_size: int | None = None):
        self.chunk_size = chunk_size

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        for task in tasks:
            try:
                result = task.fn(task.payload)
            except Exception as err:  # noqa: BLE001 - reported with the task's name, the others go on
                yield Outcome(task, error=one_line(err))
            else:
                yield Outcome(task, result)

    def describe(self) -> dict:
        return {"executor": self.name, "chunk_size": self.chunk_size, "resources": {"CPU": os.cpu_count()}}

    def close(self) -> None:
        """Nothing to release."""
