"""Progress bars: drawn on a terminal only; plain lines (or nothing) in a log; one factory for all."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import HANG_GUARD_S

from qkd_qiskit.progress import LineProgress, bars_shown, progress_bar

PACKAGE = Path(__file__).resolve().parents[2] / "qkd_qiskit"
ROOT = PACKAGE.parent


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_and_no_control_characters_when_not_a_terminal():
    log = io.StringIO()
    for _ in progress_bar(range(50), desc="epochs", file=log, mininterval=0):
        pass
    assert log.getvalue() == ""
    with progress_bar(total=4, desc="units", unit="unit", lines=True, file=log, line_interval=0) as bar:
        for _ in range(4):
            bar.update(1)
            bar.set_postfix(active=3)
    text = log.getvalue()
    assert isinstance(bar, LineProgress) and "\r" not in text and "\x1b" not in text
    assert text.splitlines()[-1].startswith("units: 4/4 done")


def test_lines_are_rate_limited_but_the_end_is_always_printed():
    log = io.StringIO()
    bar = progress_bar(total=100, desc="units", lines=True, file=log, line_interval=3600)
    for _ in range(100):
        bar.update(1)
    bar.close()
    assert log.getvalue().splitlines() == [line for line in log.getvalue().splitlines() if "100/100" in line]
    assert len(log.getvalue().splitlines()) == 1


def test_a_terminal_gets_a_real_bar_and_no_progress_silences_everything():
    tty = FakeTerminal()
    assert bars_shown(True, tty) and not bars_shown(False, tty) and not bars_shown(True, io.StringIO())
    for _ in progress_bar(range(3), desc="epochs", file=tty, mininterval=0):
        pass
    assert "\r" in tty.getvalue() and "epochs" in tty.getvalue()
    quiet = FakeTerminal()
    with progress_bar(total=2, enabled=False, lines=True, file=quiet) as bar:
        bar.update(2)
    assert quiet.getvalue() == ""


def test_progress_is_the_only_module_that_imports_tqdm():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "tqdm" or n.startswith("tqdm.") for n in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert set(importers) == {"progress.py"}, importers


def test_qkd_run_into_a_log_file_has_plain_lines(tmp_path, small_config_dict):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(small_config_dict))
    with open(tmp_path / "log.txt", "w") as log:  # stderr and stdout are a file, not a terminal
        proc = subprocess.run([sys.executable, "-m", "qkd_qiskit.cli", "run", str(config), "--out",
                               str(tmp_path / "run")], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, timeout=HANG_GUARD_S)
    text = (tmp_path / "log.txt").read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text and "\x1b" not in text
    assert "units: 9/9 done" in text
