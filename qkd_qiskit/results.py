"""The results directory: atomic file writes and one folder per finished unit.

A *unit* is one trained model: (model, kd, seed). Its folder ``units/<model>-<teacher|kd|nokd>-seed<k>/``
holds ``checkpoint.pt``, ``history.csv`` and, written last, ``result.json``. A unit is finished iff
its ``result.json`` exists, so a run killed at any moment resumes by skipping finished units, and
``results.csv`` is always rebuilt from the unit files: it can never hold a duplicate or half a row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

RESULT_COLUMNS = ["model", "role", "kd", "seed", "f1_macro", "f1_weighted", "accuracy", "n_params",
                  "epochs_trained", "best_epoch", "best_val_loss", "train_seconds", "confusion_matrix"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_csv(path: Path, rows: Iterable[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


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
