"""The papers' studies shipped with the package: which config each one runs, and its quick variant.

Example:
    >>> cfg = study_config("piperno2024", quick=True)
    >>> cfg.name, cfg.seeds, cfg.student_train.max_epochs
    ('piperno2024_xor_quick', [0, 1, 2], 8)
"""

from __future__ import annotations

from pathlib import Path

from .config import ExperimentConfig, load_config, parse_config

STUDIES = {"piperno2024": "piperno2024_xor.yaml", "hasan2023": "hasan2023_digits.yaml"}
STUDY_DATASETS = {"hasan2023": {d: f"hasan2023_{d}.yaml" for d in ("digits", "mnist", "fashion_mnist", "cifar10")}}
"""Studies shipped for several datasets (``qkd reproduce STUDY --dataset D``); the default is in STUDIES."""
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def study_config(study: str, quick: bool = False, dataset: str | None = None) -> ExperimentConfig:
    """The shipped config of a paper's study; ``quick`` keeps its models but cuts seeds and epochs."""
    if dataset is not None:
        options = STUDY_DATASETS.get(study, {})
        if dataset not in options:
            raise ValueError(f"--dataset: study {study} has no dataset {dataset!r}"
                             + (f" (known: {', '.join(options)})" if options else " (it has one dataset)"))
        cfg = load_config(CONFIG_DIR / options[dataset])
    else:
        cfg = load_config(CONFIG_DIR / STUDIES[study])
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
