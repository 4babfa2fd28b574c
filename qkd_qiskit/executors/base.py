"""The executor interface: map picklable tasks to results, report the ones that failed for good.

A :class:`Task` is a name (the units it covers, for messages), a module-level function and its
payload; the function lives in the caller's module (training in :mod:`qkd_qiskit.experiments`,
evaluation, calibration) and receives everything it needs in the payload, so it can run in this
process or on another machine without a shared file system. An executor only runs tasks: the
driver writes every result itself, as each one arrives (:func:`run_tasks`).

Work is cut into *chunks* (:func:`chunked`): a fixed, consecutive split of each model's planned
units, decided before anything runs, so the same config and chunk size always give the same
batches, whichever executor runs them and whatever was already finished.

Example:
    >>> chunked(list("abcde"), 2), chunked(list("abc"), None)
    ([['a', 'b'], ['c', 'd'], ['e']], [['a', 'b', 'c']])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Task:
    """``fn(payload)`` under a ``name`` that says which units it covers."""

    name: str
    fn: Callable[[Any], Any]
    payload: Any


@dataclass(frozen=True)
class Outcome:
    """A finished task: its ``result``, or ``error`` (one line) when it failed for good."""

    task: Task
    result: Any = None
    error: str | None = None


class TasksFailed(ValueError):
    """Tasks that failed for good, after every other task had finished, as one line naming each
    (a ValueError: the command line reports it like every other one-line error)."""

    def __init__(self, failures: Sequence[Outcome]):
        self.lines = [f"{o.task.name}: {o.error}" for o in failures]
        super().__init__(f"{len(self.lines)} task(s) failed: " + "; ".join(self.lines))


class Executor(Protocol):
    """Runs tasks and yields an :class:`Outcome` for each as it finishes (any order).

    ``in_process``: tasks run in the caller's process (their progress bars can be shown)."""

    name: str
    in_process: bool

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...


def chunked(items: Sequence[T], size: int | None) -> list[list[T]]:
    """Consecutive chunks of ``size`` items (the last may be shorter); ``None``: one chunk of all."""
    if not items:
        return []
    step = len(items) if size is None else size
    return [list(items[i:i + step]) for i in range(0, len(items), step)]


def chunk_name(keys: Sequence[str]) -> str:
    """A chunk's name in messages: its unit, or its first and last units and their number.

    Example:
        >>> chunk_name(["q2-kd-seed0"]), chunk_name(["q2-kd-seed0", "q2-kd-seed1", "q2-kd-seed2"])
        ('q2-kd-seed0', 'q2-kd-seed0 .. q2-kd-seed2 (3 units)')
    """
    return keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} units)"


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_tasks(executor: Executor, tasks: Sequence[Task], on_result: Callable[[Task, Any], None]) -> list[Outcome]:
    """Run every task, hand each result to ``on_result`` as it arrives; return the failures.

    A failed task never stops the others: the caller reports the returned failures after
    everything else has finished (:class:`TasksFailed`)."""
    failures = []
    for outcome in executor.run(tasks):
        if outcome.error is None:
            on_result(outcome.task, outcome.result)
        else:
            failures.append(outcome)
    return failures
