"""The run directory: one folder per finished unit, the results table, and run manifests.

A *unit* is one trained model: (model, kd, seed). Its folder ``units/<model>-<teacher|kd|nokd>-seed<k>/``
holds ``checkpoint.pt``, ``history.csv`` and, written last, ``result.json``. A unit is finished iff
its ``result.json`` exists, so a run killed at any moment resumes by skipping finished units, and
``results.csv`` is always rebuilt from the unit files: it can never hold a duplicate or half a row.
Every file is written atomically (:mod:`qkd_qiskit.atomic`).

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
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json

RESULT_COLUMNS = ["model", "role", "kd", "seed", "f1_macro", "f1_weighted", "accuracy", "n_params",
                  "epochs_trained", "best_epoch", "best_val_loss", "train_seconds", "confusion_matrix"]


PACKAGES = ("qkd-qiskit", "qiskit", "qiskit-machine-learning", "qiskit-aer", "qiskit-ibm-runtime", "torch",
            "numpy", "scikit-learn")


def now() -> str:
    """UTC time stamp of manifests and ledgers (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def git_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout (the package version is then recorded)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_manifest(fields: dict, previous: dict | None, environment: bool = False) -> dict:
    """``fields`` plus start / resume / finish times; a resumed run keeps its first start time and
    appends this start to ``resumed_at``. ``environment`` adds versions, Python, platform and commit."""
    t = now()
    env = {"versions": package_versions(), "python": platform.python_version(), "platform": platform.platform(),
           "git_commit": git_commit()} if environment else {}
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


def plan_units(cfg: Any) -> list[Unit]:
    """Every unit an :class:`~qkd_qiskit.config.ExperimentConfig` asks for: teachers first, then
    students x kd x seeds."""
    units = [Unit(cfg.teacher.model, False, s, "teacher") for s in cfg.seeds]
    for st in cfg.students:
        units += [Unit(st.label, kd, s) for kd in st.kd for s in cfg.seeds]
    return units


class RunDir:
    """Paths and records of one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    def unit_dir(self, unit: Unit) -> Path:
        return self.root / "units" / unit.key

    def is_done(self, unit: Unit) -> bool:
        return (self.unit_dir(unit) / "result.json").is_file()

    def save_unit(self, unit: Unit, state: dict, history: list[dict], result: dict, meta: dict) -> None:
        """Checkpoint and history first, ``result.json`` last: its presence marks the unit finished."""
        d = self.unit_dir(unit)
        atomic_torch_save(d / "checkpoint.pt", {"state": state, "meta": meta})
        atomic_write_csv(d / "history.csv", history, ["epoch", "train_loss", "val_loss"])
        atomic_write_json(d / "result.json", result)

    def read_manifest(self) -> dict | None:
        """The manifest written so far, or None in a new folder."""
        return json.loads(self.manifest.read_text()) if self.manifest.is_file() else None

    def load_checkpoint(self, unit: Unit) -> dict:
        return torch.load(self.unit_dir(unit) / "checkpoint.pt", map_location="cpu", weights_only=True)

    def results(self) -> list[dict]:
        """Every finished unit's result, in a stable order."""
        rows = [json.loads(p.read_text()) for p in sorted((self.root / "units").glob("*/result.json"))]
        return sorted(rows, key=lambda r: (r["role"] != "teacher", r["model"], r["kd"], r["seed"]))

    def write_results_csv(self) -> list[dict]:
        rows = self.results()
        atomic_write_csv(self.results_csv, rows, RESULT_COLUMNS)
        return rows
