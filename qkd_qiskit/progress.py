"""Progress bars: the one factory every long loop uses (trainer, ``qkd run``, ``qkd evaluate``,
``qkd calibrate``, downloads).

On a terminal a bar is tqdm's (a notebook widget under Jupyter). When stderr is not a terminal (a log
file, a pipe, CI) no bar is drawn, so no carriage returns or escape codes end up in the log; a
counter made with ``lines=True`` (units of a run, units of an evaluation) prints a plain line
``desc: n/total done (elapsed)`` instead, at most every ``line_interval`` seconds and once at the end.
``enabled=False`` (``--no-progress``) silences both.

Example:
    >>> import io
    >>> log = io.StringIO()                              # not a terminal
    >>> with progress_bar(total=3, desc="units", unit="unit", lines=True, file=log, line_interval=0) as bar:
    ...     bar.update(2); bar.update(1)
    >>> print(log.getvalue().replace("\\r", "<CR>"), end="")   # plain lines, no carriage return
    units: 2/3 done (0 s)
    units: 3/3 done (0 s)
    >>> log = io.StringIO()
    >>> for _ in progress_bar(range(5), desc="epochs", file=log): pass
    >>> log.getvalue()                                   # a bar without lines=True: nothing at all
    ''
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, TextIO


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr, where bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _notebook() -> bool:
    """True when tqdm.auto picked its notebook widget (Jupyter): widgets never spam a log."""
    from tqdm.asyncio import tqdm as console  # what tqdm.auto picks outside a notebook
    from tqdm.auto import tqdm as auto

    return auto is not console


def bars_shown(enabled: bool = True, stream: TextIO | None = None) -> bool:
    """Whether :func:`progress_bar` draws a bar: enabled, and a terminal (or a notebook)."""
    return enabled and (is_terminal(stream) or (stream is None and _notebook()))


class LineProgress:
    """A tqdm-like counter for non-terminals: one plain line per ``line_interval`` seconds and at the end."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, file: TextIO | None = None, line_interval: float = 30.0,
                 **_: Any):
        self.iterable, self.desc, self.unit, self.n = iterable, desc, unit, initial
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.file, self.line_interval = file, line_interval
        self.start = self.last = time.monotonic()
        self.printed_n = initial

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        stream = self.file if self.file is not None else sys.stderr
        print(f"{self.desc}: {self.n}{of} done ({time.monotonic() - self.start:.0f} s)", file=stream, flush=True)
        self.last, self.printed_n = time.monotonic(), self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.line_interval or self.n == self.total:
            self._line()

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Ignored: postfixes change every step and belong on a live bar only."""

    def write(self, text: str) -> None:
        print(text, file=self.file if self.file is not None else sys.stderr, flush=True)

    def close(self) -> None:
        if self.printed_n != self.n and self.n:
            self._line()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, lines: bool = False,
                 line_interval: float = 30.0, **kwargs: Any) -> Any:
    """A tqdm bar (``tqdm.auto``; ``kwargs`` go to it) when :func:`bars_shown`, else a silent one,
    or a :class:`LineProgress` when ``lines`` (and ``enabled``): see the module docstring."""
    from tqdm.auto import tqdm

    stream = kwargs.get("file")
    if bars_shown(enabled, stream):
        return tqdm(iterable, **kwargs)
    if enabled and lines:
        return LineProgress(iterable, line_interval=line_interval, **kwargs)
    return tqdm(iterable, disable=True, **kwargs)
