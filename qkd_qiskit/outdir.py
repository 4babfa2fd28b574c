"""Output folders and files: checked before any work starts, locked while a command writes them, and
cleaned of the temporary files a killed writer left behind. The one home of "is this ``--out``
usable?" for ``qkd run``, ``qkd reproduce``, ``qkd evaluate`` and every file a command writes.

* :func:`check_output_dir` creates nothing: an ``--out`` that is a file, lies on a read-only file
  system or anywhere files cannot be created (``/proc``), or is being written by another ``qkd``
  process, is one line (:class:`OutputDirError`, a ``ValueError``).
* :func:`lock_output_dir` creates the folder and holds an exclusive ``fcntl.flock`` on
  ``DIR/.qkd.lock`` while a command writes there. The kernel drops the lock when the process ends,
  however it ends, so a killed run never leaves a stale lock behind; the lock file itself stays
  (deleting a lock file that others may have opened would let two processes hold "the" lock).
  On taking the lock, temporary files of atomic writes (``.<name>.<pid>.<random>.tmp``, see
  :mod:`qkd_qiskit.atomic`) whose writer is gone are removed.
* :func:`check_output_file` is the same check for a single output file (``qkd circuits --out``).

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> check_output_dir(out) == out and not out.exists()
    True
    >>> with lock_output_dir(out):
    ...     try:
    ...         check_output_dir(out)
    ...     except OutputDirError as err:
    ...         print(str(err).split(" (pid")[0])  # doctest: +ELLIPSIS
    --out: ... is in use by another qkd process
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from types import TracebackType

try:  # POSIX; elsewhere folders are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".qkd.lock"
"""The lock file inside a locked output folder (kept after the command ends; harmless)."""


class OutputDirError(ValueError):
    """An output folder or file that cannot be used, worded as one line naming it."""


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def _probe_writable(folder: Path, path: Path, option: str) -> None:
    """Create and delete a file in ``folder``: the only test that sees read-only mounts, /proc and
    permissions alike (``os.access`` says yes to root on /proc)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".qkd-write-test.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        where = "" if folder == path else f" (cannot create files in {folder})"
        raise OutputDirError(f"{option}: {path} is not writable: {_reason(err)}{where}") from None


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _in_use(path: Path, option: str, lock: Path) -> OutputDirError:
    return OutputDirError(f"{option}: {path} is in use by another qkd process{_holder(lock)}; wait for it "
                          f"to finish or choose another {option}")


def check_output_dir(path: str | Path, option: str = "--out", in_use_ok: bool = False) -> Path:
    """Raise :class:`OutputDirError` unless ``path`` can be (or is) an output folder nobody else is
    writing (``in_use_ok``: or that another process is writing, for a report into a running run).
    Creates nothing; run it before any work."""
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        what = "a file" if existing.exists() else "not a folder"
        if existing == path:
            raise OutputDirError(f"{option}: {path} is {what}, not a folder")
        raise OutputDirError(f"{option}: {path}: {existing} is {what}, not a folder")
    _probe_writable(existing, path, option)
    lock = path / LOCK_FILE
    if existing == path and fcntl is not None and not in_use_ok and lock.is_file():
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return path
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(path, option, lock) from None
        except OSError:
            pass  # a file system without locks: nothing to tell
        finally:
            os.close(fd)  # closing drops a lock we may just have taken
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Raise :class:`OutputDirError` unless ``path`` can be written as a file: not a folder, in a
    folder that exists and accepts new files. Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise OutputDirError(f"{option}: {path} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise OutputDirError(f"{option}: {path}: folder {folder} {what}")
    _probe_writable(folder, path, option)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():  # this process writes nothing while it takes the lock: a reused pid
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temp_files(root: str | Path) -> list[Path]:
    """Remove temporary files of atomic writes under ``root`` whose writing process is gone (a
    kill between creating and renaming one); returns what was removed. Files of live writers (a
    ``qkd report`` into the same run, an evaluation in a subfolder) are kept."""
    removed = []
    for tmp in Path(root).rglob(".*.tmp"):
        parts = tmp.name.split(".")  # ['', name..., pid, random, 'tmp']
        pid = parts[-3] if len(parts) >= 5 else ""
        if pid.isdigit() and _pid_alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


class lock_output_dir:  # noqa: N801 - used like a function: ``with lock_output_dir(out): ...``
    """Context manager: create ``path``, lock it for this process (or raise :class:`OutputDirError`
    naming it as in use), remove stale temporary files, and release the lock on exit."""

    def __init__(self, path: str | Path, option: str = "--out"):
        self.path = Path(path)
        self.option = option
        self.removed: list[Path] = []
        self._fd: int | None = None

    def __enter__(self) -> "lock_output_dir":
        check_output_dir(self.path, self.option)
        lock = self.path / LOCK_FILE
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise OutputDirError(f"{self.option}: {self.path} is not writable: {_reason(err)}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _in_use(self.path, self.option, lock) from None
            except OSError as err:
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        self.removed = remove_stale_temp_files(self.path)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None
