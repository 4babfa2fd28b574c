"""The papers' studies shipped with the package: which config each one runs, and its quick variant.

Example:
    >>> cfg = study_config("piperno2024", quick=True)
    >>> cfg.name, cfg.seeds, cfg.student_train.max_epochs
    ('piperno2024_xor_quick', [0, 1, 2], 8)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ExperimentConfig, load_config, parse_config
from .shipped import shipped_dir, shipped_file, shipped_names
from .sweep import Sweep, expand, load_sweep

STUDIES = {"piperno2024": "piperno2024_xor.yaml", "hasan2023": "hasan2023_digits.yaml", "robustness": "robustness.yaml"}
STUDY_DATASETS = {"hasan2023": {d: f"hasan2023_{d}.yaml" for d in ("digits", "mnist", "fashion_mnist", "cifar10")},
                  "robustness": {"xor": "robustness.yaml", "digits": "robustness_digits.yaml"}}
"""Studies shipped for several datasets (``qkd reproduce STUDY --dataset D``); the default is in STUDIES."""
SWEEP_STUDIES = {"kd-regimes": "kd_regimes.yaml"}
"""Studies whose config is a sweep (:mod:`qkd_qiskit.sweep`)."""
QUICK_SWEEP = {"data.n_train": [25, 100], "data.label_noise": [0.0, 0.2], "kd.temperature": [1.0, 4.0]}
"""The grid of ``qkd reproduce kd-regimes --quick`` (8 points)."""


def config_dir() -> Path:
    """The shipped configs (the repository's ``configs/``; package data in an installed wheel)."""
    return shipped_dir("configs")


def resolve_config_path(spec: str | Path) -> Path:
    """A config file from a path; a path that does not exist but names a shipped config
    (``xor_classical``, ``xor_classical.yaml`` or ``configs/xor_classical.yaml``) is the shipped file,
    so the README's commands also work outside the repository. Anything else is returned unchanged.

    Example:
        >>> resolve_config_path("configs/xor_classical.yaml").name, resolve_config_path("xor_classical").name
        ('xor_classical.yaml', 'xor_classical.yaml')
    """
    path = Path(spec)
    if path.is_file() or path.parent.name not in ("", "configs") or len(path.parts) > 2:
        return path
    return shipped_file("configs", path.name) or path


def study_config(study: str, quick: bool = False, dataset: str | None = None) -> ExperimentConfig:
    """The shipped config of a paper's study; ``quick`` keeps its models but cuts seeds and epochs."""
    if dataset is not None:
        options = STUDY_DATASETS.get(study, {})
        if dataset not in options:
            raise ValueError(f"--dataset: study {study} has no dataset {dataset!r}"
                             + (f" (known: {', '.join(options)})" if options else " (it has one dataset)"))
        cfg = load_config(config_dir() / options[dataset])
    else:
        cfg = load_config(config_dir() / STUDIES[study])
    if not quick:
        return cfg
    raw = cfg.model_dump(mode="json")
    raw["name"] += "_quick"
    raw["seeds"] = [0, 1, 2]
    raw["teacher"]["train"].update(max_epochs=30, patience=10)
    raw["student_train"].update(max_epochs=8, patience=4)
    for st in raw["students"]:
        st["train"] = None
    return parse_config(raw, f"{study} --quick")


def study_sweep(study: str, quick: bool = False) -> Sweep:
    """The shipped sweep of a study of :data:`SWEEP_STUDIES`; ``quick`` cuts seeds, epochs and the grid.

    Example:
        >>> sw = study_sweep("kd-regimes", quick=True)
        >>> len(sw.points), sw.points[0].config.seeds, sw.points[0].config.student_train.max_epochs
        (8, [0, 1, 2], 8)
    """
    path = config_dir() / SWEEP_STUDIES[study]
    sweep = load_sweep(path)
    if not quick:
        return sweep
    raw = {**sweep.base, "name": sweep.base["name"] + "_quick", "seeds": [0, 1, 2], "sweep": QUICK_SWEEP}
    raw["teacher"] = {**raw["teacher"], "train": {**raw["teacher"]["train"], "max_epochs": 30, "patience": 10}}
    raw["student_train"] = {**raw["student_train"], "max_epochs": 8, "patience": 4}
    return expand(raw, f"{study} --quick")


def _study_of(file: str) -> str | None:
    """The ``qkd reproduce`` command that runs a shipped config file, if one does."""
    for study, options in STUDY_DATASETS.items():
        for dataset, name in options.items():
            if name == file:
                return f"qkd reproduce {study}" + ("" if STUDIES.get(study) == name else f" --dataset {dataset}")
    return next((f"qkd reproduce {study}" for study, name in {**STUDIES, **SWEEP_STUDIES}.items() if name == file),
                None)


def config_table() -> list[dict[str, Any]]:
    """One row per shipped config (``qkd configs``): its name, dataset, teacher, students, seeds, the
    number of trained units, and the command that runs it.

    Example:
        >>> row = next(r for r in config_table() if r["name"] == "piperno2024_xor")
        >>> row["dataset"], row["teacher"], row["students"][:3], row["seeds"], row["units"], row["run"]
        ('xor', 'teacher_mlp', ['linear', 'hea', 'universal'], 12, 204, 'qkd reproduce piperno2024')
    """
    rows = []
    for name in shipped_names("configs"):
        sweep = load_sweep(config_dir() / f"{name}.yaml")
        cfgs = [p.config for p in sweep.points] if sweep else [load_config(config_dir() / f"{name}.yaml")]
        cfg = cfgs[0]
        rows.append({"name": name, "dataset": cfg.data.name, "teacher": cfg.teacher.model,
                     "students": [s.label for s in cfg.students],
                     "student_models": list(dict.fromkeys(s.model for s in cfg.students)),
                     "seeds": len(cfg.seeds),
                     "units": sum(len(c.seeds) * (1 + sum(len(s.kd) for s in c.students)) for c in cfgs),
                     "points": len(cfgs) if sweep else None,
                     "run": _study_of(f"{name}.yaml") or f"qkd run {name} --out DIR"})
    return rows


def format_config_table(rows: list[dict[str, Any]]) -> str:
    """``qkd configs`` as a plain-text table (a long student list is summarised by model)."""
    table = [("config", "dataset", "teacher", "students", "seeds", "units", "run with")]
    for r in rows:
        students = r["students"]
        listed = ",".join(students) if len(students) <= 8 else f"{len(students)} x {','.join(r['student_models'])}"
        table.append((r["name"], r["dataset"], r["teacher"], listed, str(r["seeds"]), str(r["units"]), r["run"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.rjust(w) if c.isdigit() or c in ("seeds", "units") else c.ljust(w)
                               for c, w in zip(row, widths)).rstrip() for row in table)
