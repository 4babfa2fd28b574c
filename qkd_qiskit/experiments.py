"""Config-driven runs: teacher per seed, then every student with and without KD, resumable.

The seeds of one model, with KD on and off, train together as one ensemble (see :mod:`qkd_qiskit.distill`);
each seed's teacher is trained first and its logits on train/val are computed once and reused by
every student of that seed.

Example:
    >>> rows = run_experiment(load_config("configs/xor_classical.yaml"), "runs/xor")  # doctest: +SKIP
"""

from __future__ import annotations

import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import ExperimentConfig, TrainConfig, parse_config
from .data import Dataset, load_dataset
from .distill import KDWeights, TrainSettings, classification_metrics, predict_logits, train_ensemble
from .models import build_model, count_params, load_model_states, model_state
from .results import RunDir, Unit, atomic_write_json

PACKAGES = ("qkd-qiskit", "qiskit", "qiskit-machine-learning", "qiskit-aer", "qiskit-ibm-runtime", "torch",
            "numpy", "scikit-learn")


def plan_units(cfg: ExperimentConfig) -> list[Unit]:
    """Every unit the config asks for: teachers first, then students x kd x seeds."""
    units = [Unit(cfg.teacher.model, False, s, "teacher") for s in cfg.seeds]
    for st in cfg.students:
        units += [Unit(st.label, kd, s) for kd in st.kd for s in cfg.seeds]
    return units


def init_generators(model: str, seeds: Sequence[int]) -> list[torch.Generator]:
    """Initialisation generators: one per seed, independent of which other seeds share the batch."""
    offset = sum(ord(c) for c in model) * 1009
    return [torch.Generator().manual_seed(int(s) * 100003 + offset) for s in seeds]


def _dtype(cfg: ExperimentConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def _device(cfg: ExperimentConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but no CUDA device is available")
    return torch.device(cfg.device)


def _settings(t: TrainConfig) -> TrainSettings:
    return TrainSettings(lr=t.lr, max_epochs=t.max_epochs, patience=t.patience, batch_size=t.batch_size)


def build_for_units(cfg: ExperimentConfig, data: Dataset, model: str, options: dict,
                    seeds: Sequence[int], label: str | None = None) -> torch.nn.Module:
    """Ensemble of ``model`` for ``seeds``; ``label`` (a student entry's name, default ``model``) seeds
    the initialisation. Image models get the dataset's ``image_shape``."""
    from .image_models import NEEDS_IMAGE_SHAPE

    if model in NEEDS_IMAGE_SHAPE and data.image_shape is not None:
        options = {**options, "image_shape": data.image_shape}
    net = build_model(model, data.n_features, data.n_classes, init_generators(label or model, seeds), _dtype(cfg),
                      **options)
    return net.to(_device(cfg))


def model_of(cfg: ExperimentConfig, label: str) -> tuple[str, dict]:
    """Registry model and options of a student unit label (a student entry's name or model)."""
    for st in cfg.students:
        if st.label == label:
            return st.model, st.options
    return label, {}


def load_trained(run: RunDir, units: Sequence[Unit], cfg: ExperimentConfig, data: Dataset,
                 options: dict) -> torch.nn.Module:
    """Rebuild the ensemble of finished ``units`` (same model) from their checkpoints."""
    model = model_of(cfg, units[0].model)[0] if units[0].role == "student" else cfg.teacher.model
    net = build_for_units(cfg, data, model, options, [u.seed for u in units], units[0].model)
    return load_model_states(net, [run.load_checkpoint(u)["state"] for u in units])


def _train_group(cfg: ExperimentConfig, run: RunDir, data: Dataset, units: list[Unit], options: dict,
                 train: TrainConfig, teacher: dict[int, tuple[torch.Tensor, torch.Tensor]] | None,
                 progress: bool) -> None:
    """Train ``units`` (one model; any seeds; KD on and off mixed) as one batched ensemble."""
    seeds = [u.seed for u in units]
    model = model_of(cfg, units[0].model)[0] if units[0].role == "student" else cfg.teacher.model
    net = build_for_units(cfg, data, model, options, seeds, units[0].model)
    if hasattr(net, "fit_reduction"):
        net.fit_reduction(data.x_train)  # data-dependent reductions (PCA) see the training split only
    t_train = t_val = kd_mask = None
    if teacher is not None and any(u.kd for u in units):
        t_train = torch.stack([teacher[s][0] for s in seeds])
        t_val = torch.stack([teacher[s][1] for s in seeds])
        kd_mask = torch.tensor([u.kd for u in units], device=t_train.device)
    kd = KDWeights(cfg.kd.ce_weight, cfg.kd.kd_weight, cfg.kd.temperature)
    kinds = sorted({"kd" if u.kd else "nokd" for u in units}, reverse=True)
    desc = f"{units[0].model} {'+'.join(kinds)} x{len(units)}"
    t0 = time.perf_counter()
    outcomes = train_ensemble(net, data.x_train, data.y_train, data.x_val, data.y_val, seeds, _settings(train),
                              t_train, t_val, kd, kd_mask, desc=desc, progress=progress)
    seconds = (time.perf_counter() - t0) / len(units)
    preds = predict_logits(net, data.x_test).argmax(-1).cpu().numpy()
    n_params = count_params(net)
    for m, (unit, out) in enumerate(zip(units, outcomes)):
        result = {"model": unit.model, "role": unit.role, "kd": unit.kd, "seed": unit.seed,
                  **classification_metrics(data.y_test, preds[m], data.n_classes), "n_params": n_params,
                  "epochs_trained": out.epochs_trained, "best_epoch": out.best_epoch,
                  "best_val_loss": out.best_val_loss, "train_seconds": round(seconds, 4),
                  "group_size": len(units)}
        meta = {"model": unit.model, "arch": model, "options": options, "seed": unit.seed, "kd": unit.kd}
        run.save_unit(unit, model_state(net, m), out.history, result, meta)
    run.write_results_csv()


def _teacher_logits(cfg: ExperimentConfig, run: RunDir, data: Dataset) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    units = [Unit(cfg.teacher.model, False, s, "teacher") for s in cfg.seeds]
    net = load_trained(run, units, cfg, data, cfg.teacher.options)
    tr, va = predict_logits(net, data.x_train), predict_logits(net, data.x_val)
    return {s: (tr[m], va[m]) for m, s in enumerate(cfg.seeds)}


def manifest(cfg: ExperimentConfig, previous: dict | None) -> dict:
    """Resolved config, versions, git commit and times; a resumed run keeps its first start time."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "config": cfg.model_dump(mode="json"),
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "started_at": (previous or {}).get("started_at", now),
        "resumed_at": (previous or {}).get("resumed_at", []) + ([now] if previous else []),
        "finished_at": None,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def preflight(cfg: ExperimentConfig, data: Dataset) -> None:
    """Build every model once so a bad model option fails, naming its field, before any training."""
    specs = [("teacher", cfg.teacher.model, cfg.teacher.options)]
    specs += [(f"students.{i}", st.model, st.options) for i, st in enumerate(cfg.students)]
    for where, model, options in specs:
        try:
            build_for_units(cfg, data, model, options, [0])
        except ValueError as err:
            raise ValueError(f"{where}.{err}") from None


def run_experiment(cfg: ExperimentConfig, out: str | Path, progress: bool = True) -> list[dict]:
    """Train every unit of ``cfg`` not yet finished in ``out``; return all result rows."""
    import json

    data = load_dataset(cfg.data.name, **cfg.data.loader_options())
    preflight(cfg, data)
    run = RunDir(out)
    run.root.mkdir(parents=True, exist_ok=True)
    previous = json.loads(run.manifest.read_text()) if run.manifest.is_file() else None
    if previous and previous.get("config") != cfg.model_dump(mode="json"):
        raise ValueError(f"out: {run.root} holds a run of a different config; choose another --out")
    info = manifest(cfg, previous)
    atomic_write_json(run.manifest, info)
    torch.manual_seed(0)
    np.random.seed(0)
    units = plan_units(cfg)
    overall = tqdm(total=len(units), initial=sum(run.is_done(u) for u in units), desc="units", unit="model",
                   disable=not progress)
    pending = [u for u in units if u.role == "teacher" and not run.is_done(u)]
    if pending:
        _train_group(cfg, run, data, pending, cfg.teacher.options, cfg.teacher.train, None, progress)
        overall.update(len(pending))
    teacher = _teacher_logits(cfg, run, data)
    for st in cfg.students:  # KD on and off of one student form one ensemble (paired: same inits)
        pending = [Unit(st.label, kd, s) for kd in st.kd for s in cfg.seeds if not run.is_done(Unit(st.label, kd, s))]
        if pending:
            _train_group(cfg, run, data, pending, st.options, cfg.train_settings(st), teacher, progress)
            overall.update(len(pending))
    overall.close()
    rows = run.write_results_csv()
    info["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(run.manifest, info)
    return rows


STUDIES = {"piperno2024": "piperno2024_xor.yaml", "hasan2023": "hasan2023_digits.yaml"}
STUDY_DATASETS = {"hasan2023": {d: f"hasan2023_{d}.yaml" for d in ("digits", "mnist", "fashion_mnist", "cifar10")}}
"""Studies shipped for several datasets (``qkd reproduce STUDY --dataset D``); the default is in STUDIES."""
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def study_config(study: str, quick: bool = False, dataset: str | None = None) -> ExperimentConfig:
    """The shipped config of a paper's study; ``quick`` keeps its models but cuts seeds and epochs."""
    from .config import load_config

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
