"""The run directory: one folder per finished unit, the results table, and run manifests.

A *unit* is one trained model: (model, kd, seed). Its folder ``units/<model>-<teacher|kd|nokd>-seed<k>/``
holds ``checkpoint.pt``, ``history.csv`` and, written last, ``result.json``. A unit is finished iff
its files parse: ``result.json`` is a JSON object with the expected keys and ``checkpoint.pt`` is not
empty (:func:`training_dir`; evaluation and job folders need ``result.json`` only). A run killed at
any moment resumes by skipping finished units; a unit whose files were damaged (by hand, a full disk,
a copy cut short) is not finished and is trained again. ``results.csv`` is always rebuilt from the
unit files: it can never hold a duplicate or half a row. Every file is written atomically
(:mod:`qkd_qiskit.atomic`); a damaged manifest or checkpoint is one line naming it
(:class:`RunFileError`).

:func:`run_manifest` is the one home of what a manifest records about *when* and *with what* a run
(training, evaluation, jobs) was made: package versions, git commit or package version, start /
resume / finish times.

Example:
    >>> Unit("hea", True, 3).key, Unit("teacher_mlp", False, 0, "teacher").key
    ('hea-kd-seed3', 'teacher_mlp-teacher-seed0')
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json
from .strict import read_json
from .shipped import package_version
from .threads import thread_info

RESULT_COLUMNS = ["model", "role", "kd", "seed", "f1_macro", "f1_weighted", "accuracy", "n_params",
                  "epochs_trained", "best_epoch", "best_val_loss", "train_seconds", "confusion_matrix"]


PACKAGES = ("qkd-qiskit", "qiskit", "qiskit-machine-learning", "qiskit-aer", "qiskit-ibm-runtime", "torch",
            "numpy", "scikit-learn")


def now() -> str:
    """UTC time stamp of manifests and ledgers (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None if one is not installed); this
    package's own version is always known (:func:`qkd_qiskit.shipped.package_version`)."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["qkd-qiskit"] = package_version()
    return versions


def git_commit(package_dir: Path | None = None) -> str | None:
    """The commit of the git checkout this package's source is tracked in, or None when it is not
    (an installed wheel, even one inside some other repository's ``.venv``): then only the package
    version identifies the code."""
    cwd = package_dir or Path(__file__).resolve().parent
    try:
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], capture_output=True,
                                 text=True, timeout=5, cwd=cwd)
        if tracked.returncode != 0:
            return None
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_manifest(fields: dict, previous: dict | None, environment: bool = False) -> dict:
    """``fields`` plus start / resume / finish times; a resumed run keeps its first start time and
    appends this start to ``resumed_at``. ``environment`` adds versions, Python, platform, commit and
    the torch threads of this process (:func:`qkd_qiskit.threads.thread_info`)."""
    t = now()
    env = {"qkd_qiskit_version": package_version(), "versions": package_versions(),
           "python": platform.python_version(), "platform": platform.platform(),
           "git_commit": git_commit(), "torch_threads": thread_info()} if environment else {}
    return {**fields, **env,
            "started_at": (previous or {}).get("started_at", t),
            "resumed_at": (previous or {}).get("resumed_at", []) + ([t] if previous else []),
            "finished_at": None}


def finish_manifest(path: Path, info: dict) -> None:
    """Stamp ``finished_at`` and write the manifest."""
    info["finished_at"] = now()
    atomic_write_json(path, info)


def atomic_torch_save(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class Unit:
    """One trained model of a run."""

    model: str
    kd: bool
    seed: int
    role: str = "student"

    @property
    def key(self) -> str:
        """Folder name; the role is part of it so a teacher architecture can also be a student."""
        kind = "teacher" if self.role == "teacher" else ("kd" if self.kd else "nokd")
        return f"{self.model}-{kind}-seed{self.seed}"


def unit_seed(base: int | None, unit: Unit, salt: int | None = None) -> int:
    """A per-unit seed derived from a profile's seed, so units draw independent shot noise
    (``salt`` separates uses, e.g. calibration from evaluation)."""
    entropy = [base or 0, zlib.crc32(unit.key.encode())] + ([] if salt is None else [salt])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def plan_units(cfg: Any) -> list[Unit]:
    """Every unit an :class:`~qkd_qiskit.config.ExperimentConfig` asks for: teachers first, then
    students x kd x seeds."""
    units = [Unit(cfg.teacher.model, False, s, "teacher") for s in cfg.seeds]
    for st in cfg.students:
        units += [Unit(st.label, kd, s) for kd in st.kd for s in cfg.seeds]
    return units


UNIT_KEYS = ("model", "role", "kd", "seed")
"""Keys every unit's ``result.json`` holds (training, evaluation, jobs, calibration)."""


class RunFileError(ValueError):
    """A damaged or foreign file in a run directory, worded as one line naming the file."""


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


class RunDir:
    """Paths and records of one run directory.

    ``result_keys``: keys a unit's ``result.json`` must hold; ``unit_files``: files its folder must
    hold (non-empty) for the unit to count as finished. Cheap to ask: no checkpoint is loaded."""

    def __init__(self, root: str | Path, result_keys: Sequence[str] = UNIT_KEYS, unit_files: Sequence[str] = ()):
        self.root = Path(root)
        self.result_keys = tuple(result_keys)
        self.unit_files = tuple(unit_files)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    def unit_dir(self, unit: Unit) -> Path:
        return self.root / "units" / unit.key

    def read_result(self, path: Path) -> dict | None:
        """A ``result.json`` that parses to an object with the expected keys, else None."""
        try:
            row = json.loads(Path(path).read_bytes())
        except (OSError, ValueError):
            return None
        return row if isinstance(row, dict) and all(k in row for k in self.result_keys) else None

    def is_done(self, unit: Unit) -> bool:
        d = self.unit_dir(unit)
        return self.read_result(d / "result.json") is not None and all(_nonempty(d / f) for f in self.unit_files)

    def damaged(self, unit: Unit) -> str | None:
        """Why a unit that was written (it has a ``result.json``) does not count as finished, or None."""
        d = self.unit_dir(unit)
        if not (d / "result.json").exists():
            return None
        if self.read_result(d / "result.json") is None:
            return f"{d / 'result.json'} is damaged (not a JSON object with {', '.join(self.result_keys)})"
        bad = [f for f in self.unit_files if not _nonempty(d / f)]
        return f"{d / bad[0]} is missing or empty" if bad else None

    def save_unit(self, unit: Unit, state: dict, history: list[dict], result: dict, meta: dict) -> None:
        """Checkpoint and history first, ``result.json`` last: its presence marks the unit finished."""
        d = self.unit_dir(unit)
        atomic_torch_save(d / "checkpoint.pt", {"state": state, "meta": meta})
        # full precision: the only record of the learning curve (tables for reading are rounded)
        atomic_write_csv(d / "history.csv", history, ["epoch", "train_loss", "val_loss"], significant=None)
        atomic_write_json(d / "result.json", result)

    def read_manifest(self) -> dict | None:
        """The manifest written so far, or None in a new folder; a damaged one is a :class:`RunFileError`."""
        if not self.manifest.exists():
            return None
        return read_json(self.manifest, RunFileError, "restore it, or delete it and run the same command again "
                         "(finished units are kept)")

    def load_checkpoint(self, unit: Unit) -> dict:
        """A unit's checkpoint; a missing or damaged one is a :class:`RunFileError` naming it."""
        path = self.unit_dir(unit) / "checkpoint.pt"
        hint = f"delete {path.parent} and resume the run to train the unit again"
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise RunFileError(f"{path}: missing; {hint}") from None
        except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError, ...
            why = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:120]
            raise RunFileError(f"{path}: damaged checkpoint ({why}); {hint}") from None
        if not isinstance(ck, dict) or not isinstance(ck.get("state"), dict):
            raise RunFileError(f"{path}: not a checkpoint of this package (no 'state'); {hint}")
        return ck

    def results(self) -> list[dict]:
        """Every finished unit's result, in a stable order (damaged units are not finished)."""
        rows = []
        for p in sorted((self.root / "units").glob("*/result.json")):
            row = self.read_result(p)
            if row is not None and all(_nonempty(p.parent / f) for f in self.unit_files):
                rows.append(row)
        return sorted(rows, key=lambda r: (r["role"] != "teacher", r["model"], r["kd"], r["seed"]))

    def write_results_csv(self) -> list[dict]:
        rows = self.results()
        atomic_write_csv(self.results_csv, rows, RESULT_COLUMNS)
        return rows


def training_dir(root: str | Path) -> RunDir:
    """The folder of a ``qkd run``: a unit is finished when its ``result.json`` holds its metrics and
    its ``checkpoint.pt`` is there."""
    return RunDir(root, UNIT_KEYS + ("f1_macro",), ("checkpoint.pt",))
