"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

Readers (and a run killed at any moment) see the old file or the new one, never half of one.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.json"
    >>> atomic_write_json(p, {"f1": 1.0}); p.read_text()
    '{\\n  "f1": 1.0\\n}\\n'
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: set, then restore (once, at import)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""Mode of every written file: what ``open()`` would give (the user's umask), not mkstemp's 0600."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers see old or new, never half.

    The temporary file is ``.<name>.<pid>.<random>.tmp``: the pid tells a later process whether its
    writer is gone (:func:`qkd_qiskit.outdir.remove_stale_temp_files`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


CSV_SIGNIFICANT_DIGITS = 6
"""Floats in CSV tables (read by people) keep this many significant digits; JSON keeps full precision."""


def _csv_cell(v: Any, significant: int | None) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    if significant and isinstance(v, float):
        return repr(float(f"{v:.{significant}g}"))  # 0.9925925925 -> 0.992593, 1.0 stays 1.0
    return v


def atomic_write_csv(path: Path, rows: Iterable[dict], columns: list[str],
                     significant: int | None = CSV_SIGNIFICANT_DIGITS) -> None:
    """CSV with a header; list/dict cells are written as JSON, floats rounded to ``significant``
    digits (None: full precision). CSVs are for reading; computations read the JSON files."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v, significant) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())
