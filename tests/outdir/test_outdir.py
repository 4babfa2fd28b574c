"""Output folders (`qkd_qiskit.outdir`): checked before any work, locked while written, stale temporary
files removed, written files with the user's umask (`qkd_qiskit.atomic`)."""

import os
import signal
import stat
import subprocess
import sys

import pytest
from conftest import HANG_GUARD_S, ROOT

from qkd_qiskit.atomic import FILE_MODE, atomic_write_text
from qkd_qiskit.outdir import (
    LOCK_FILE,
    OutputDirError,
    check_output_dir,
    check_output_file,
    lock_output_dir,
    remove_stale_temp_files,
)


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_usable_folders_pass_and_nothing_is_created(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_dir(tmp_path) == tmp_path
    assert sorted(tmp_path.iterdir()) == []  # the write probe leaves nothing behind


@pytest.mark.parametrize("make, expected", [
    (lambda t: (t / "f").write_text("x") and t / "f", "f is a file, not a folder"),
    (lambda t: (t / "f").write_text("x") and t / "f" / "sub", "f is a file, not a folder"),
])
def test_a_file_in_the_way_is_one_line(tmp_path, make, expected):
    with pytest.raises(OutputDirError) as err:
        check_output_dir(make(tmp_path))
    assert one_line(err).startswith("--out: ") and expected in one_line(err)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_proc_is_not_writable():
    with pytest.raises(OutputDirError) as err:
        check_output_dir("/proc/qkd-run")
    assert one_line(err).startswith("--out: /proc/qkd-run is not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only-mode folders")
def test_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputDirError, match="is not writable: Permission denied"):
            check_output_dir(ro / "run")
    finally:
        ro.chmod(0o755)


def test_output_file_checks(tmp_path):
    assert check_output_file(tmp_path / "x.png") == tmp_path / "x.png"
    with pytest.raises(OutputDirError) as err:
        check_output_file(tmp_path / "missing" / "x.png")
    assert one_line(err) == f"--out: {tmp_path / 'missing' / 'x.png'}: folder {tmp_path / 'missing'} does not exist"
    with pytest.raises(OutputDirError, match="is a folder; give a file name"):
        check_output_file(tmp_path)


def test_lock_is_exclusive_and_released(tmp_path):
    out = tmp_path / "run"
    with lock_output_dir(out):
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())
        for attempt in (lambda: check_output_dir(out), lambda: lock_output_dir(out).__enter__()):
            with pytest.raises(OutputDirError) as err:
                attempt()
            assert f"is in use by another qkd process (pid {os.getpid()})" in one_line(err)
        check_output_dir(out, in_use_ok=True)  # a report may write into a running run
    with lock_output_dir(out):  # released on exit
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "run"
    hold = ("import sys, time; from qkd_qiskit.outdir import lock_output_dir\n"
            f"with lock_output_dir({str(out)!r}):\n    print('locked', flush=True); time.sleep(3600)")
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "locked"  # waits for the lock, however slow the machine
        with pytest.raises(OutputDirError, match=rf"in use by another qkd process \(pid {proc.pid}\)"):
            check_output_dir(out)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=HANG_GUARD_S)
    with lock_output_dir(out):  # the kernel dropped the dead process's lock
        pass


def test_stale_temporary_files_are_removed_live_ones_kept(tmp_path):
    (tmp_path / "units" / "u").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=HANG_GUARD_S)
    stale = [tmp_path / f".results.csv.{dead.stdout.strip()}.abc_12.tmp",
             tmp_path / "units" / "u" / ".result.json.x1y2z3.tmp"]  # older naming, no pid: stale too
    live = tmp_path / "units" / "u" / f".checkpoint.pt.{os.getppid()}.q9.tmp"  # a live writer (our parent)
    for p in [*stale, live]:
        p.write_text("partial")
    with lock_output_dir(tmp_path) as lock:
        assert sorted(lock.removed) == sorted(stale)
    assert live.exists() and not any(p.exists() for p in stale)
    assert remove_stale_temp_files(tmp_path) == []


def test_written_files_get_the_users_umask(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == FILE_MODE
    code = ("import os, stat, sys; os.umask(0o002); from qkd_qiskit.atomic import atomic_write_json\n"
            "p = sys.argv[1] + '/m.json'; atomic_write_json(p, {}); print(oct(stat.S_IMODE(os.stat(p).st_mode)))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                          cwd=ROOT, timeout=HANG_GUARD_S)
    assert proc.stdout.strip() == "0o664"  # not mkstemp's 0o600
