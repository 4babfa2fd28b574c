"""Reusing finished units across runs that would train them identically (the sub-runs of a sweep).

A unit's result depends only on what enters its training: a teacher on the teacher's data and
training settings; a student without KD on its entry, its training settings and its data (not on
``kd`` nor the teacher); a student with KD on all of that plus the teacher and ``kd``. Each unit is
trained with its own initialisation and data-order generators, so which other units share its
ensemble does not matter (:mod:`qkd_qiskit.distill`). :func:`unit_identity` writes that down; a sweep
copies a finished unit into every other sub-run with the same identity (teachers across temperatures
and students, KD-off students across ``kd.*``). A run skips a chunk whose units are all finished
(the teachers); a KD-off unit that shares its chunk with unfinished KD-on units is computed again
with them, and its copied files are kept (a finished unit is never re-written).

Example:
    >>> from qkd_qiskit.config import parse_config
    >>> a = parse_config({"name": "a", "students": [{"model": "linear"}], "kd": {"temperature": 1.0}})
    >>> b = parse_config({"name": "b", "students": [{"model": "linear"}], "kd": {"temperature": 4.0}})
    >>> off, on = Unit("linear", False, 0), Unit("linear", True, 0)
    >>> unit_identity(a, off) == unit_identity(b, off), unit_identity(a, on) == unit_identity(b, on)
    (True, False)
"""

from __future__ import annotations

import json
import os
import shutil

from .config import ExperimentConfig
from .rundir import RunDir, Unit


def _teacher_data(cfg: ExperimentConfig) -> dict:
    data = cfg.data.model_dump(mode="json")
    if cfg.data.teacher_data == "full":  # the teacher never sees the student's subset
        data.pop("n_train", None)
        data.pop("teacher_data", None)
    return data


def _teacher(cfg: ExperimentConfig) -> dict:
    return {"teacher": cfg.teacher.model_dump(mode="json"), "data": _teacher_data(cfg), "dtype": cfg.dtype,
            "device": cfg.device}


def unit_identity(cfg: ExperimentConfig, unit: Unit) -> str:
    """Everything that determines ``unit``'s training in ``cfg``, as a canonical JSON string."""
    if unit.role == "teacher":
        ident = {**_teacher(cfg), "seed": unit.seed}
    else:
        st = next(s for s in cfg.students if s.label == unit.model)
        entry = st.model_dump(mode="json", exclude={"kd"})
        ident = {"student": entry, "train": cfg.train_settings(st).model_dump(mode="json"),
                 "data": cfg.data.model_dump(mode="json"), "dtype": cfg.dtype, "device": cfg.device,
                 "seed": unit.seed, "kd": unit.kd}
        if unit.kd:
            ident |= {"teacher": _teacher(cfg), "kd_settings": cfg.kd.model_dump(mode="json")}
    return json.dumps(ident, sort_keys=True)


def copy_unit(source: RunDir, target: RunDir, unit: Unit) -> None:
    """Copy a finished unit's folder into ``target`` atomically (a temporary folder renamed into
    place, so a kill leaves either no unit or a whole one); a damaged copy there is replaced."""
    dest = target.unit_dir(unit)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source.unit_dir(unit), tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def reuse_units(index: dict[str, tuple[RunDir, Unit]], cfg: ExperimentConfig, run: RunDir,
                units: list[Unit]) -> int:
    """Copy into ``run`` every unfinished unit whose identity ``index`` holds (identity -> a finished
    run and unit); return how many were copied."""
    copied = 0
    for u in units:
        found = index.get(unit_identity(cfg, u))
        if found is not None and not run.is_done(u) and found[0].root != run.root:
            (run.root / "units").mkdir(parents=True, exist_ok=True)
            copy_unit(found[0], run, u)
            copied += 1
    return copied


def index_units(index: dict[str, tuple[RunDir, Unit]], cfg: ExperimentConfig, run: RunDir,
                units: list[Unit]) -> None:
    """Add the finished ``units`` of ``run`` to ``index`` (first one wins)."""
    for u in units:
        if run.is_done(u):
            index.setdefault(unit_identity(cfg, u), (run, u))

