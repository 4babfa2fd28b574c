"""Backend-calibrated heads: refit a trained student's classical head on its *noisy* read-outs.

Device noise shrinks every read-out of a deep student towards the maximally mixed value (for the
6-qubit amplitude students, ``noisy ~ a * exact + c`` with ``a`` 0.2 on Eagle and 0.7 on Heron
devices), so a head trained on exact read-outs answers with its biases. ``qkd calibrate`` runs the
circuit of every trained quantum unit on a seeded, class-stratified subset of the *training* split
on the backend, standardises the noisy read-outs (``StandardScaler``) and fits a multinomial
logistic-regression head (``LogisticRegression``); its regularisation ``C`` is chosen on a subset of
the *validation* split run the same way. The test split is never touched. The circuit and its
weights are unchanged: only the classical head is replaced, per backend.

Files (``RUN_DIR/calibration/<profile>/``, resumable and atomic like ``qkd run``):
``units/<unit>/head.json`` (scaler and head, chosen ``C``, validation scores), ``results.csv`` (one
row per unit) and ``manifest.json`` (backend, subsets, seeds). ``qkd evaluate`` on the same profile
then reports exact, raw-noisy and calibrated-noisy metrics side by side.

Cost: ``samples + val_samples`` circuits per unit, each at the profile's shots (defaults 300 + 150).

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 90); r = np.eye(3)[y] * 0.1 + rng.normal(0, 0.02, (90, 3))  # shrunk read-outs
    >>> head = fit_head(r[:60], y[:60], r[60:], y[60:], 3)
    >>> bool((head.logits(r[60:]).argmax(1) == y[60:]).mean() > 0.9)
    True
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .atomic import atomic_write_csv, atomic_write_json
from .backends import Backend, Profile, get_backend, prepare_backend
from .data import stratified_subset
from .executors import (Executor, Outcome, Task, TasksFailed, check_executor, chunk_name, chunked, make_executor,
                         run_tasks)
from .noisy import sampled_readouts
from .rundir import RunDir, Unit, finish_manifest, run_manifest, unit_seed
from .data import Dataset
from .trained import QuantumGroup, circuit_angles, from_states, group_student, head_logits, load_run, quantum_groups

CALIBRATION_DIR = "calibration"
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Inverse L2 strengths tried; the one with the best validation macro-F1 (then log-loss) wins."""
CALIBRATION_COLUMNS = ["model", "kd", "seed", "backend", "samples", "val_samples", "C", "val_f1_raw_head",
                       "val_f1_calibrated", "shots", "calibrate_seconds"]
TRAIN_SUBSET_SEED, VAL_SUBSET_SEED = 1, 2


@dataclass(frozen=True)
class CalibratedHead:
    """Standardise read-outs, then a linear map to logits: ``((r - mean) / scale) @ coef.T + intercept``."""

    mean: list[float]
    scale: list[float]
    coef: list[list[float]]
    intercept: list[float]
    C: float
    val_f1: float

    def logits(self, readouts: np.ndarray) -> np.ndarray:
        z = (np.asarray(readouts, dtype=float) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef).T + np.asarray(self.intercept)


def fit_head(r_train: np.ndarray, y_train: np.ndarray, r_val: np.ndarray, y_val: np.ndarray,
             n_classes: int, grid: Sequence[float] = C_GRID) -> CalibratedHead:
    """Fit the head on training read-outs for each ``C`` of ``grid``; keep the best on validation
    (macro-F1, ties broken by log-loss). scikit-learn does the fitting."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, log_loss
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(r_train)
    scale = np.where(scaler.scale_ > 1e-12, scaler.scale_, 1.0)
    z_tr, z_va = (r_train - scaler.mean_) / scale, (r_val - scaler.mean_) / scale
    labels = list(range(n_classes))
    best = None
    for c in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings at large C: the score decides
            clf = LogisticRegression(C=c, max_iter=2000).fit(z_tr, y_train)
        w, b = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # one score s for the second class: logits (-s/2, s/2)
            w, b = np.vstack([-w[0] / 2, w[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
        coef = np.zeros((n_classes, z_tr.shape[1]))
        intercept = np.full(n_classes, -1e9)  # a class absent from training is never predicted
        coef[clf.classes_], intercept[clf.classes_] = w, b
        logits = z_va @ coef.T + intercept
        f1 = f1_score(y_val, logits.argmax(1), labels=labels, average="macro", zero_division=0)
        p = np.exp(logits - logits.max(1, keepdims=True))
        loss = log_loss(y_val, p / p.sum(1, keepdims=True), labels=labels)
        if best is None or (f1, -loss) > best[0]:
            best = ((f1, -loss), CalibratedHead(scaler.mean_.tolist(), scale.tolist(), coef.tolist(),
                                                intercept.tolist(), float(c), float(f1)))
    return best[1]


def calibration_folder(run_dir: str | Path, backend_name: str) -> RunDir:
    return RunDir(Path(run_dir) / CALIBRATION_DIR / backend_name)


def load_heads(run_dir: str | Path, backend_name: str) -> dict[str, CalibratedHead]:
    """Calibrated heads of a run for one backend profile, by unit key (empty if never calibrated)."""
    import json

    folder = calibration_folder(run_dir, backend_name).root / "units"
    heads = {}
    for path in sorted(folder.glob("*/head.json")):
        try:
            heads[path.parent.name] = CalibratedHead(**json.loads(path.read_text())["head"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: unreadable calibrated head ({err}); delete it and run qkd calibrate "
                             "again") from None
    return heads


def start_manifest(dest: RunDir, run: RunDir, backend: Backend, data: Dataset, tr: np.ndarray, va: np.ndarray,
                   **extra: Any) -> dict:
    """Write (or resume) the calibration folder's manifest: run, backend and the training /
    validation subsets; a folder calibrated with another profile or other subsets is one-line error."""
    previous = dest.read_manifest()
    info = run_manifest({"run": str(run.root.resolve()), "backend": backend.describe(),
                         "train_subset": {"n": int(len(tr)), "of": int(len(data.y_train)), "seed": TRAIN_SUBSET_SEED},
                         "val_subset": {"n": int(len(va)), "of": int(len(data.y_val)), "seed": VAL_SUBSET_SEED},
                         **extra}, previous)
    if previous and any(previous.get(k) != info[k] for k in ("run", "backend", "train_subset", "val_subset")):
        raise ValueError(f"calibrate: {dest.root} was calibrated with another profile or other sample counts; "
                         "use the same --samples, or delete the folder")
    atomic_write_json(dest.manifest, info)
    return info


def calibrate_run(run_dir: str | Path, backend_spec: str | Path | Profile, samples: int = 300,
                  val_samples: int = 150, students: Sequence[str] | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None, executor: str | Executor = "local",
                  address: str | None = None, chunk_size: int | None = None) -> list[dict]:
    """Calibrate the head of every trained quantum student of ``run_dir`` on a backend (see module
    docstring); finished units are skipped, so a killed calibration resumes. Returns all rows.

    ``executor`` (a name, made after every check, or an executor object) runs chunks of up to
    ``chunk_size`` units of one group (:mod:`qkd_qiskit.executors`); the driver writes each
    unit's files. Chunks that fail for good are a :class:`~qkd_qiskit.executors.TasksFailed`
    raised once every other unit is written."""
    from .progress import progress_bar

    if isinstance(executor, str):
        check_executor(executor, address, chunk_size)
    if samples < 2 or val_samples < 2:
        raise ValueError("samples: need at least 2 training and 2 validation samples")
    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg, students)
    tr = stratified_subset(data.y_train, samples, seed=TRAIN_SUBSET_SEED)
    va = stratified_subset(data.y_val, val_samples, seed=VAL_SUBSET_SEED)
    backend = prepare_backend(backend_spec, [group_student(cfg, data, g) for g in groups])
    dest = calibration_folder(run.root, backend.name)
    info = start_manifest(dest, run, backend, data, tr, va)
    pending = [u for g in groups for u in g.units if not dest.is_done(u)]
    bar = progress_bar(total=len(pending), desc=f"calibrate on {backend.name}", unit="unit", enabled=progress,
                       leave=False, lines=True)
    ex = make_executor(executor, address, chunk_size) if isinstance(executor, str) else executor
    try:
        info["executor"] = ex.describe()
        atomic_write_json(dest.manifest, info)
        failed = _calibrate_chunks(ex, run, cfg, data, groups, dest, keep_backend(backend), tr, va, bar)
    finally:
        if ex is not executor:
            ex.close()
    bar.close()
    rows = dest.results()
    atomic_write_csv(dest.root / "results.csv", rows, CALIBRATION_COLUMNS)
    if failed:
        raise TasksFailed(failed)
    finish_manifest(dest.manifest, info)
    if log:
        log(f"calibrated {len(rows)} unit(s) on {backend.name}: {len(tr)} training + {len(va)} validation "
            f"circuits each, {backend.shots or 'exact'} shots")
    return rows


def _calibrate_chunks(executor: Executor, run: RunDir, cfg: Any, data: Dataset, groups: Sequence[QuantumGroup],
                      dest: RunDir, backend: Backend, tr: np.ndarray, va: np.ndarray, bar: Any) -> list[Outcome]:
    """Send each group's unfinished units out in chunks; write ``head.json`` then ``result.json`` of
    each unit as its chunk comes back; return the chunks that failed for good."""
    tasks = []
    for group in groups:
        todo = [u for u in group.units if not dest.is_done(u)]
        if todo:
            states = tuple(run.load_checkpoint(u)["state"] for u in group.units)
            tasks += [Task(chunk_name([u.key for u in c]), calibrate_chunk,
                           CalibrationChunk(cfg, data, group, states, tuple(c), backend.profile, tr, va))
                      for c in chunked(todo, executor.chunk_size)]

    def save(task: Task, done: list) -> None:
        for unit, record, row in done:
            atomic_write_json(dest.unit_dir(unit) / "head.json", record)
            atomic_write_json(dest.unit_dir(unit) / "result.json", row)
            bar.update(1)

    return run_tasks(executor, tasks, save)


@dataclass(frozen=True)
class CalibrationChunk:
    """Units of one group to calibrate and everything a worker needs (picklable, no run file): the
    states of every unit of the group (the same ensemble whatever the chunk), the backend profile
    and the training / validation subsets, the dataset."""

    cfg: Any
    data: Dataset
    group: QuantumGroup
    states: tuple[dict, ...]
    units: tuple[Unit, ...]
    profile: Profile
    tr: np.ndarray
    va: np.ndarray


def calibrate_chunk(chunk: CalibrationChunk) -> list[tuple[Unit, dict, dict]]:
    """``(unit, head.json record, result row)`` of each unit of the chunk. Runs on an executor's
    worker; writes nothing."""
    from sklearn.metrics import f1_score

    cfg, data, group, tr, va = chunk.cfg, chunk.data, chunk.group, chunk.tr, chunk.va
    net = from_states(cfg, data, group.units, dict(group.options), chunk.states).eval()
    backend = backend_of(chunk.profile)
    a_tr, a_va = circuit_angles(net, data.x_train[tr]), circuit_angles(net, data.x_val[va])
    index = {u: m for m, u in enumerate(group.units)}
    done = []
    for unit in chunk.units:
        m = index[unit]
        t0 = time.perf_counter()
        w = net.quantum.weights[m].detach().double().numpy()
        seed = unit_seed(backend.profile.seed, unit, salt=1) if backend.kind == "aer" else \
            getattr(backend.profile, "seed", None)
        r_tr = sampled_readouts(backend, net.quantum.student, w, a_tr[m], seed=seed)
        r_va = sampled_readouts(backend, net.quantum.student, w, a_va[m], seed=None if seed is None else seed + 1)
        head = fit_head(r_tr, data.y_train[tr], r_va, data.y_val[va], data.n_classes)
        raw = _raw_head_f1(net, m, r_va, data.y_val[va], data.n_classes, f1_score)
        row = {"model": unit.model, "role": unit.role, "kd": unit.kd, "seed": unit.seed, "backend": backend.name,
               "samples": int(len(tr)), "val_samples": int(len(va)), "C": head.C, "val_f1_raw_head": raw,
               "val_f1_calibrated": head.val_f1, "shots": backend.shots,
               "calibrate_seconds": round(time.perf_counter() - t0, 4)}
        done.append((unit, {"head": asdict(head), "sampling_seed": seed}, row))
    return done


_BACKENDS: dict[str, Backend] = {}
"""The backend of the last profile used in this process (one entry): a worker reuses it for every
chunk, and chunks run in the driver's process reuse the driver's (transpiled circuits included)."""


def keep_backend(backend: Backend) -> Backend:
    """Remember ``backend`` as the one :func:`backend_of` returns for its profile; returns it."""
    _BACKENDS.clear()
    _BACKENDS[backend.profile.model_dump_json()] = backend
    return backend


def backend_of(profile: Profile) -> Backend:
    """The backend of ``profile`` in this process: the one kept, else a new one (then kept)."""
    backend = _BACKENDS.get(profile.model_dump_json())
    return backend if backend is not None else keep_backend(get_backend(profile))


def _raw_head_f1(net: Any, m: int, readouts: np.ndarray, y: np.ndarray, n_classes: int, f1_score: Any) -> float:
    """Validation macro-F1 of the trained (exact) head on the same noisy read-outs, for comparison."""
    pred = head_logits(net, m, readouts).argmax(1)
    return float(f1_score(y, pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def calibrated_logits(heads: dict[str, CalibratedHead], unit: Unit, readouts: np.ndarray) -> np.ndarray | None:
    """Logits of a unit's calibrated head, or None when the unit was not calibrated on this backend."""
    head = heads.get(unit.key)
    return None if head is None else head.logits(readouts)


