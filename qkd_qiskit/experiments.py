"""Config-driven runs: teacher per seed, then every student with and without KD, resumable.

The seeds of one model, with KD on and off, train together as one ensemble (see :mod:`qkd_qiskit.distill`);
each seed's teacher is trained first and its logits on train/val are computed once and reused by
every student of that seed. Each ensemble (or each fixed chunk of ``chunk_size`` of its units) is one
:class:`TrainChunk` task of an executor (:mod:`qkd_qiskit.executors`: this process or Ray); this
process writes every unit as its chunk comes back.

Example:
    >>> rows = run_experiment(load_config("configs/xor_classical.yaml"), "runs/xor")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .atomic import atomic_write_json
from .config import ExperimentConfig, TrainConfig
from .data import Dataset, load_dataset, training_datasets
from .distill import KDWeights, TrainSettings, classification_metrics, predict_logits, train_ensemble
from .executors import (Executor, LocalExecutor, Outcome, Task, TasksFailed, check_executor, chunk_name, chunked,
                         make_executor, run_tasks)
from .models import count_params, model_state
from .outdir import check_output_dir, lock_output_dir
from .progress import progress_bar
from .rundir import RunDir, Unit, finish_manifest, plan_units, run_manifest, training_dir
from .trained import build_for_units, load_trained, torch_device, unit_model


def _settings(t: TrainConfig) -> TrainSettings:
    return TrainSettings(lr=t.lr, max_epochs=t.max_epochs, patience=t.patience, batch_size=t.batch_size)


@dataclass(frozen=True)
class TrainChunk:
    """A chunk of units (one model; any seeds; KD on and off mixed) and everything a worker needs to
    train it, its dataset included: picklable, so a worker reads no file.

    ``teacher``: each seed's teacher logits on train / val (CPU tensors), or None for a teacher chunk."""

    cfg: ExperimentConfig
    data: Dataset
    units: tuple[Unit, ...]
    options: dict
    train: TrainConfig
    teacher: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
    progress: bool = False

    @property
    def name(self) -> str:
        return chunk_name([u.key for u in self.units])


def train_chunk(chunk: TrainChunk) -> list[tuple[Unit, dict, list[dict], dict, dict]]:
    """Train a chunk as one batched ensemble; return each unit's ``(unit, state, history, result,
    meta)`` for :meth:`RunDir.save_unit`. Runs on an executor's worker: reads and writes no run file.

    The global RNGs are seeded per chunk, so a chunk's result does not depend on what ran before it
    in the same process."""
    torch.manual_seed(0)
    np.random.seed(0)
    cfg, data, units, teacher = chunk.cfg, chunk.data, list(chunk.units), chunk.teacher
    seeds = [u.seed for u in units]
    model = unit_model(cfg, units[0])
    net = build_for_units(cfg, data, model, chunk.options, seeds, units[0].model)
    if hasattr(net, "fit_reduction"):
        net.fit_reduction(data.x_train)  # data-dependent reductions (PCA) see the training split only
    t_train = t_val = kd_mask = None
    if teacher is not None and any(u.kd for u in units):
        device = torch_device(cfg)
        t_train = torch.stack([teacher[s][0] for s in seeds]).to(device)
        t_val = torch.stack([teacher[s][1] for s in seeds]).to(device)
        kd_mask = torch.tensor([u.kd for u in units], device=device)
    kd = KDWeights(cfg.kd.ce_weight, cfg.kd.kd_weight, cfg.kd.temperature)
    kinds = sorted({"kd" if u.kd else "nokd" for u in units}, reverse=True)
    desc = f"{units[0].model} {'+'.join(kinds)} x{len(units)}"
    t0 = time.perf_counter()
    outcomes = train_ensemble(net, data.x_train, data.y_train, data.x_val, data.y_val, seeds, _settings(chunk.train),
                              t_train, t_val, kd, kd_mask, desc=desc, progress=chunk.progress)
    seconds = (time.perf_counter() - t0) / len(units)
    preds = predict_logits(net, data.x_test).argmax(-1).cpu().numpy()
    n_params = count_params(net)
    saved = []
    for m, (unit, out) in enumerate(zip(units, outcomes)):
        result = {"model": unit.model, "role": unit.role, "kd": unit.kd, "seed": unit.seed,
                  **classification_metrics(data.y_test, preds[m], data.n_classes), "n_params": n_params,
                  "epochs_trained": out.epochs_trained, "best_epoch": out.best_epoch,
                  "best_val_loss": out.best_val_loss, "train_seconds": round(seconds, 4),
                  "group_size": len(units)}
        meta = {"model": unit.model, "arch": model, "options": chunk.options, "seed": unit.seed, "kd": unit.kd}
        saved.append((unit, model_state(net, m), out.history, result, meta))
    return saved


def _train_chunks(executor: Executor, run: RunDir, chunks: list[TrainChunk], overall: Any) -> list[Outcome]:
    """Train ``chunks`` on ``executor``; write each unit not yet finished as its chunk comes back
    (a finished one is never re-written); return the chunks that failed for good."""
    def save(task: Task, saved: list) -> None:
        todo = [item for item in saved if not run.is_done(item[0])]
        for item in todo:
            run.save_unit(*item)
        run.write_results_csv()
        overall.update(len(todo))

    return run_tasks(executor, [Task(c.name, train_chunk, c) for c in chunks], save)


def _pending_chunks(run: RunDir, units: list[Unit], size: int | None) -> list[list[Unit]]:
    """The fixed chunks of ``units`` (see :func:`~qkd_qiskit.executors.chunked`) that hold an
    unfinished unit: such a chunk is trained whole, so its batch, and thus its bits, never depend on
    what was already finished."""
    return [c for c in chunked(units, size) if not all(run.is_done(u) for u in c)]


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
                   log: Callable[[str], None] | None = None, executor: str | Executor = "local",
                   address: str | None = None, chunk_size: int | None = None) -> list[dict]:
    """Train every unit of ``cfg`` not yet finished in ``out``; return all result rows.

    When every unit is already finished, nothing is trained or re-written: ``log`` says so.

    Everything a user can get wrong is checked before any work, each as one line (ValueError):
    ``out`` (a file, read-only, in use by another process: :mod:`qkd_qiskit.outdir`), the device,
    the data and every model option (:func:`preflight`), a manifest of another config. ``out`` is
    locked for the whole run; units whose files were damaged are trained again (``log`` names them).

    ``executor`` runs the training chunks (:mod:`qkd_qiskit.executors`): a name (``local``, ``ray``
    with ``address``; made after the checks, closed at the end) or an executor object (its own
    chunk size; the caller closes it). Each model's planned units are cut into fixed chunks of
    ``chunk_size`` (default: all of them, one ensemble per model); the driver writes every unit.
    Chunks that fail for good are a :class:`~qkd_qiskit.executors.TasksFailed` raised after every
    other chunk has finished and been written.
    """
    if isinstance(executor, str):
        check_executor(executor, address, chunk_size)
    check_output_dir(out)
    torch_device(cfg)
    data, teacher_data = run_datasets(cfg)
    preflight(cfg, data)
    with lock_output_dir(out):
        run = training_dir(out)
        _check_resumable(cfg, run, chunk_size if isinstance(executor, str) else executor.chunk_size)
        ex = make_executor(executor, address, chunk_size) if isinstance(executor, str) else executor
        try:
            return _run_locked(cfg, run, data, progress, log, ex, teacher_data)
        finally:
            if ex is not executor:
                ex.close()


def run_datasets(cfg: ExperimentConfig) -> tuple[Dataset, Dataset]:
    """``(student, teacher)`` datasets of a run: the training split as ``data.n_train`` /
    ``label_noise`` / ``teacher_data`` make it; validation and test as loaded."""
    return training_datasets(load_dataset(cfg.data.name, **cfg.data.loader_options()), **cfg.data.training_options())


def _check_resumable(cfg: ExperimentConfig, run: RunDir, size: int | None) -> None:
    """One line when ``run`` cannot be resumed with this config or chunk size (checked before any
    executor starts). The chunk size decides which units train in one batch, and a batch of
    another size can round differently (README, 'Running on a Ray cluster'), so a started run
    keeps its chunk size."""
    previous = run.read_manifest()
    if previous and "config" not in previous:
        raise ValueError(f"out: {run.root} is not a `qkd run` folder (its manifest.json has no config); "
                         "choose another --out")
    if previous and previous.get("config") != cfg.model_dump(mode="json"):
        raise ValueError(f"out: {run.root} holds a run of a different config; choose another --out")
    before = (previous or {}).get("executor", {}).get("chunk_size")
    if previous and before != size and not all(run.is_done(u) for u in plan_units(cfg)):
        raise ValueError(f"--chunk-size: {run.root} was started with --chunk-size {before or 'all'} (not "
                         f"{size or 'all'}); resume it with the same chunk size")


def _run_locked(cfg: ExperimentConfig, run: RunDir, data: Dataset, progress: bool,
                log: Callable[[str], None] | None, executor: Executor | None = None,
                teacher_data: Dataset | None = None) -> list[dict]:
    executor = executor or LocalExecutor()
    previous = run.read_manifest()
    if previous and run.results_csv.is_file() and all(run.is_done(u) for u in plan_units(cfg)):
        if log is not None:
            log(f"all {len(plan_units(cfg))} units already finished in {run.root}; nothing to train")
        if previous.get("finished_at") is None:  # killed after its last unit: only the end time is missing
            finish_manifest(run.manifest, previous)
        return run.results()
    info = run_manifest({"config": cfg.model_dump(mode="json"), "executor": executor.describe()}, previous,
                        environment=True)
    atomic_write_json(run.manifest, info)
    units = plan_units(cfg)
    for u in units:
        why = run.damaged(u)
        if why and log is not None:
            log(f"{why}: training {u.key} again")
    overall = progress_bar(total=len(units), initial=sum(run.is_done(u) for u in units), desc="units",
                           unit="unit", enabled=progress, lines=True)
    shown = progress and executor.in_process  # workers in other processes show no bars
    teachers = [u for u in units if u.role == "teacher"]
    chunks = [TrainChunk(cfg, teacher_data or data, tuple(c), cfg.teacher.options, cfg.teacher.train, None, shown)
              for c in _pending_chunks(run, teachers, executor.chunk_size)]
    failed = _train_chunks(executor, run, chunks, overall)
    if failed:
        overall.close()
        raise TasksFailed(failed + [Outcome(Task("students", train_chunk, None), error="not trained: the "
                                            "teacher of some seeds is missing; run the same command again")])
    logits = _teacher_logits(cfg, run, data)
    chunks = []
    for st in cfg.students:  # KD on and off of one student form one ensemble (paired: same inits)
        mine = [u for u in units if u.role == "student" and u.model == st.label]
        teacher = {s: (tr.cpu(), va.cpu()) for s, (tr, va) in logits.items()} if True in st.kd else None
        chunks += [TrainChunk(cfg, data, tuple(c), st.options, cfg.train_settings(st), teacher, shown)
                   for c in _pending_chunks(run, mine, executor.chunk_size)]
    failed = _train_chunks(executor, run, chunks, overall)
    overall.close()
    rows = run.write_results_csv()
    if failed:
        raise TasksFailed(failed)
    finish_manifest(run.manifest, info)
    return rows
