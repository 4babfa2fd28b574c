"""Config-driven runs: teacher per seed, then every student with and without KD, resumable.

The seeds of one model, with KD on and off, train together as one ensemble (see :mod:`qkd_qiskit.distill`);
each seed's teacher is trained first and its logits on train/val are computed once and reused by
every student of that seed.

Example:
    >>> rows = run_experiment(load_config("configs/xor_classical.yaml"), "runs/xor")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write_json
from .config import ExperimentConfig, TrainConfig
from .data import Dataset, load_dataset
from .distill import KDWeights, TrainSettings, classification_metrics, predict_logits, train_ensemble
from .models import count_params, model_state
from .outdir import check_output_dir, lock_output_dir
from .progress import progress_bar
from .rundir import RunDir, Unit, finish_manifest, plan_units, run_manifest, training_dir
from .trained import build_for_units, load_trained, torch_device, unit_model


def _settings(t: TrainConfig) -> TrainSettings:
    return TrainSettings(lr=t.lr, max_epochs=t.max_epochs, patience=t.patience, batch_size=t.batch_size)


def _train_group(cfg: ExperimentConfig, run: RunDir, data: Dataset, units: list[Unit], options: dict,
                 train: TrainConfig, teacher: dict[int, tuple[torch.Tensor, torch.Tensor]] | None,
                 progress: bool) -> None:
    """Train ``units`` (one model; any seeds; KD on and off mixed) as one batched ensemble."""
    seeds = [u.seed for u in units]
    model = unit_model(cfg, units[0])
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


def preflight(cfg: ExperimentConfig, data: Dataset) -> None:
    """Build every model once so a bad model option fails, naming its field, before any training.

    Builders name the option (``options.qubits: ...``); anything else a builder raises on a bad
    option (a TypeError from deep inside torch) still becomes one line naming the entry's options."""
    torch_device(cfg)  # device: cuda without a GPU
    specs = [("teacher", cfg.teacher.model, cfg.teacher.options)]
    specs += [(f"students.{i}", st.model, st.options) for i, st in enumerate(cfg.students)]
    for where, model, options in specs:
        try:
            build_for_units(cfg, data, model, options, [0])
        except (ValueError, TypeError, RuntimeError) as err:
            msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
            if isinstance(err, ValueError) and msg.startswith(("options", "model")):
                raise ValueError(f"{where}.{msg}") from None
            raise ValueError(f"{where}.options: {model} cannot be built with {options} ({msg})") from None


def run_experiment(cfg: ExperimentConfig, out: str | Path, progress: bool = True,
                   log: Callable[[str], None] | None = None) -> list[dict]:
    """Train every unit of ``cfg`` not yet finished in ``out``; return all result rows.

    When every unit is already finished, nothing is trained or re-written: ``log`` says so.

    Everything a user can get wrong is checked before any work, each as one line (ValueError):
    ``out`` (a file, read-only, in use by another process: :mod:`qkd_qiskit.outdir`), the device,
    the data and every model option (:func:`preflight`), a manifest of another config. ``out`` is
    locked for the whole run; units whose files were damaged are trained again (``log`` names them).
    """
    check_output_dir(out)
    torch_device(cfg)
    data = load_dataset(cfg.data.name, **cfg.data.loader_options())
    preflight(cfg, data)
    with lock_output_dir(out):
        return _run_locked(cfg, training_dir(out), data, progress, log)


def _run_locked(cfg: ExperimentConfig, run: RunDir, data: Dataset, progress: bool,
                log: Callable[[str], None] | None) -> list[dict]:
    previous = run.read_manifest()
    if previous and "config" not in previous:
        raise ValueError(f"out: {run.root} is not a `qkd run` folder (its manifest.json has no config); "
                         "choose another --out")
    if previous and previous.get("config") != cfg.model_dump(mode="json"):
        raise ValueError(f"out: {run.root} holds a run of a different config; choose another --out")
    if previous and run.results_csv.is_file() and all(run.is_done(u) for u in plan_units(cfg)):
        if log is not None:
            log(f"all {len(plan_units(cfg))} units already finished in {run.root}; nothing to train")
        if previous.get("finished_at") is None:  # killed after its last unit: only the end time is missing
            finish_manifest(run.manifest, previous)
        return run.results()
    info = run_manifest({"config": cfg.model_dump(mode="json")}, previous, environment=True)
    atomic_write_json(run.manifest, info)
    torch.manual_seed(0)
    np.random.seed(0)
    units = plan_units(cfg)
    for u in units:
        why = run.damaged(u)
        if why and log is not None:
            log(f"{why}: training {u.key} again")
    overall = progress_bar(total=len(units), initial=sum(run.is_done(u) for u in units), desc="units",
                           unit="unit", enabled=progress, lines=True)
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
    finish_manifest(run.manifest, info)
    return rows
