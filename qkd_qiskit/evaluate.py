"""Noisy evaluation: every trained quantum student of a run, re-evaluated on a backend profile.

The students of ``qkd run`` are trained on the exact engine. Here each one (model x kd x seed)
is evaluated on its test split twice - exactly, and on the backend (Aer noise model or IBM
Runtime) - through the *same* classical head, so the two macro-F1 scores sit side by side.

Output folder (resumable and atomic like ``qkd run``; a unit is finished iff its ``result.json``
exists): ``units/<unit>/result.json``, ``results.csv`` (one row per unit), ``summary.csv``
(mean/std per model x kd), ``manifest.json`` (backend, shots, seeds, device, transpilation stats).

Example:
    >>> rows = evaluate_run("runs/xor_quantum", "aer-fake-sherbrooke", "runs/xor_quantum/eval-sherbrooke")  # doctest: +SKIP
    >>> print(format_summary(summarize(rows)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .backends import Backend, Profile, prepare_backend
from .config import ExperimentConfig, parse_config
from .data import Dataset, load_dataset
from .distill import classification_metrics, predict_logits
from .models import QUANTUM_STUDENT_MODELS
from .results import RunDir, Unit, atomic_write_csv, atomic_write_json

EVAL_COLUMNS = ["model", "kd", "seed", "backend", "f1_macro_exact", "f1_macro_backend", "f1_macro_delta",
                "accuracy_exact", "accuracy_backend", "f1_weighted_exact", "f1_weighted_backend",
                "prediction_agreement", "readout_mean_abs_error", "n_test", "shots", "sampling_seed",
                "eval_seconds"]
SUMMARY_COLUMNS = ["model", "kd", "seeds", "f1_exact_mean", "f1_exact_std", "f1_backend_mean", "f1_backend_std",
                   "f1_delta_mean", "accuracy_exact_mean", "accuracy_backend_mean"]
_QNN_OPTIONS = ("backend", "gradient")


# --------------------------------------------------------------------------------------------------
# Trained quantum students of a run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantumGroup:
    """The finished units of one (quantum student entry, kd) pair, loaded together as one ensemble.

    ``label`` is the student entry's name (unit folders and result rows use it); ``model`` is its
    registry model (``hea``, ``q2``, ``hasan``, ...)."""

    label: str
    model: str
    kd: bool
    options: dict
    units: tuple[Unit, ...]


def load_run(run_dir: str | Path) -> tuple[RunDir, ExperimentConfig, Dataset]:
    """The run folder, its resolved config (from ``manifest.json``) and its dataset."""
    run = RunDir(run_dir)
    if not run.manifest.is_file():
        raise ValueError(f"run: {run.root} has no manifest.json (not a `qkd run` output folder)")
    cfg = parse_config(json.loads(run.manifest.read_text())["config"], str(run.manifest))
    return run, cfg, load_dataset(cfg.data.name, **cfg.data.loader_options())


def quantum_groups(run: RunDir, cfg: ExperimentConfig, students: Sequence[str] | None = None) -> list[QuantumGroup]:
    """Finished quantum-student units of the run, grouped by (student entry, kd); raises if none.

    ``students`` keeps only the named student entries (labels); an unknown name is an error."""
    labels = [st.label for st in cfg.students if st.model in QUANTUM_STUDENT_MODELS]
    unknown = sorted(set(students or ()) - set(labels))
    if unknown:
        raise ValueError(f"students: {', '.join(unknown)} not among the run's quantum students "
                         f"({', '.join(labels) or 'none'})")
    groups = []
    for st in cfg.students:
        if st.model not in QUANTUM_STUDENT_MODELS or (students and st.label not in students):
            continue
        options = {k: v for k, v in st.options.items() if k not in _QNN_OPTIONS}
        for kd in st.kd:
            units = tuple(u for s in cfg.seeds if run.is_done(u := Unit(st.label, kd, s)))
            if units:
                groups.append(QuantumGroup(st.label, st.model, kd, options, units))
    if not groups:
        raise ValueError(f"run: {run.root} holds no trained quantum student "
                         f"(models: {', '.join(QUANTUM_STUDENT_MODELS)})")
    return groups


def load_group(run: RunDir, cfg: ExperimentConfig, data: Dataset, group: QuantumGroup) -> torch.nn.Module:
    """The exact-engine ensemble of a group's units, weights from their checkpoints."""
    from .experiments import load_trained

    net = load_trained(run, list(group.units), cfg, data, dict(group.options))
    return net.eval()


def group_student(cfg: ExperimentConfig, data: Dataset, group: QuantumGroup) -> Any:
    """The group's :class:`~qkd_qiskit.circuits.StudentCircuit`, built exactly as training built it
    (same registry builder and options; no weights are loaded)."""
    from .experiments import build_for_units

    return build_for_units(cfg, data, group.model, dict(group.options), [0], group.label).quantum.student


def circuit_angles(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Input-parameter values ``(M, N, n_inputs)`` of each model of an ensemble for features ``x``.

    The circuit embeds ``net.circuit_features(x)``: the raw features for Piperno students, the
    output of the (possibly trained, per-model) reduction for image students."""
    m = net.quantum.weights.shape[0]
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).unsqueeze(0).expand(m, -1, -1)
    with torch.no_grad():
        feats = net.circuit_features(xt).double().cpu().numpy()
    return np.stack([np.asarray(net.quantum.student.input_angles(f), dtype=np.float64) for f in feats])


def head_logits(net: torch.nn.Module, m: int, readouts: np.ndarray) -> np.ndarray:
    """Logits (N, C) of model ``m``'s classical head applied to given circuit readouts (N, n_out)."""
    ref = next(net.head.parameters())
    x = torch.zeros(net.quantum.weights.shape[0], *readouts.shape, dtype=ref.dtype)
    x[m] = torch.as_tensor(readouts, dtype=ref.dtype)
    with torch.no_grad():
        return net.head(x)[m].double().numpy()


def sampling_seed(base: int | None, unit: Unit) -> int:
    """A per-unit seed derived from the profile's seed, so units draw independent shot noise."""
    return int(np.random.SeedSequence([base or 0, zlib.crc32(unit.key.encode())]).generate_state(1)[0])


def unit_row(unit: Unit, backend: Backend, y: np.ndarray, n_classes: int, exact_logits: np.ndarray,
             backend_logits: np.ndarray, exact_out: np.ndarray, backend_out: np.ndarray, seconds: float,
             seed: int | None) -> dict:
    """Exact and backend metrics of one unit side by side."""
    pe, pb = exact_logits.argmax(-1), backend_logits.argmax(-1)
    me, mb = classification_metrics(y, pe, n_classes), classification_metrics(y, pb, n_classes)
    return {"model": unit.model, "role": unit.role, "kd": unit.kd, "seed": unit.seed, "backend": backend.name,
            "f1_macro_exact": me["f1_macro"], "f1_macro_backend": mb["f1_macro"],
            "f1_macro_delta": mb["f1_macro"] - me["f1_macro"],
            "accuracy_exact": me["accuracy"], "accuracy_backend": mb["accuracy"],
            "f1_weighted_exact": me["f1_weighted"], "f1_weighted_backend": mb["f1_weighted"],
            "prediction_agreement": float((pe == pb).mean()),
            "readout_mean_abs_error": float(np.abs(exact_out - backend_out).mean()),
            "n_test": int(len(y)), "shots": backend.shots, "sampling_seed": seed,
            "eval_seconds": round(seconds, 4),
            "confusion_matrix_backend": mb["confusion_matrix"]}


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean/std over seeds of exact and backend F1 per (model, kd)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["kd"]), []).append(r)
    out = []
    for (model, kd), rs in groups.items():
        fe = np.array([r["f1_macro_exact"] for r in rs])
        fb = np.array([r["f1_macro_backend"] for r in rs])
        std = (lambda a: float(np.std(a, ddof=1)) if len(a) > 1 else 0.0)
        out.append({"model": model, "kd": kd, "seeds": len(rs), "f1_exact_mean": float(fe.mean()),
                    "f1_exact_std": std(fe), "f1_backend_mean": float(fb.mean()), "f1_backend_std": std(fb),
                    "f1_delta_mean": float((fb - fe).mean()),
                    "accuracy_exact_mean": float(np.mean([r["accuracy_exact"] for r in rs])),
                    "accuracy_backend_mean": float(np.mean([r["accuracy_backend"] for r in rs]))})
    return out


def format_summary(summary: Sequence[dict]) -> str:
    """Plain-text table of :func:`summarize` (mean ± std over seeds)."""
    w = max([13, *(len(s["model"]) + 2 for s in summary)])
    lines = [f"{'model':<{w}}{'kd':<7}{'seeds':>5}  {'f1_exact':>13}  {'f1_backend':>13}  {'delta':>8}  {'acc_backend':>11}"]
    for s in summary:
        exact = f"{s['f1_exact_mean']:.4f}±{s['f1_exact_std']:.3f}"
        noisy = f"{s['f1_backend_mean']:.4f}±{s['f1_backend_std']:.3f}"
        lines.append(f"{s['model']:<{w}}{str(s['kd']):<7}{s['seeds']:>5}  {exact:>13}  {noisy:>13}  "
                     f"{s['f1_delta_mean']:>+8.4f}  {s['accuracy_backend_mean']:>11.4f}")
    return "\n".join(lines)


def write_tables(folder: Path, rows: list[dict]) -> list[dict]:
    """``results.csv`` and ``summary.csv`` of ``folder``; returns the summary."""
    atomic_write_csv(folder / "results.csv", rows, EVAL_COLUMNS)
    summary = summarize(rows)
    atomic_write_csv(folder / "summary.csv", summary, SUMMARY_COLUMNS)
    return summary


# --------------------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------------------


def stratified_subset(y: np.ndarray, max_samples: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified subset of ``max_samples`` test samples (all of
    them when ``max_samples`` is None or not smaller). Noisy simulation of wide ISA circuits and
    QPU time cost seconds per sample; exact and backend scores are computed on the same subset."""
    if max_samples is None or max_samples >= len(y):
        return np.arange(len(y))
    n_classes = len(np.unique(y))
    if max_samples < n_classes:
        raise ValueError(f"max_samples: {max_samples} is fewer than the {n_classes} test classes")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=max_samples, stratify=y, random_state=seed)
    return np.sort(keep)


def _manifest(run: RunDir, backend: Backend, previous: dict | None, subset: dict) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"run": str(run.root.resolve()), "backend": backend.describe(), "test_subset": subset,
            "transpilation": {},
            "sampling_seeds": (previous or {}).get("sampling_seeds", {}),
            "started_at": (previous or {}).get("started_at", now),
            "resumed_at": (previous or {}).get("resumed_at", []) + ([now] if previous else []),
            "finished_at": None}


def _check_same(previous: dict | None, info: dict, out: Path) -> None:
    if not previous:
        return
    if "test_subset" not in previous and info["test_subset"]["max_samples"] is None:
        previous = {**previous, "test_subset": info["test_subset"]}  # folders from before subsets existed
    if any(previous.get(k) != info[k] for k in ("run", "backend", "test_subset")):
        raise ValueError(f"out: {out} holds an evaluation of another run, backend profile or test subset; "
                         "choose another --out")


def evaluate_run(run_dir: str | Path, backend_spec: str | Path | Profile, out: str | Path,
                 progress: bool = True, log: Callable[[str], None] | None = None,
                 students: Sequence[str] | None = None, max_samples: int | None = None) -> list[dict]:
    """Evaluate every trained quantum student of ``run_dir`` (or the named ``students`` entries)
    on a backend, on the test split (or a stratified subset of ``max_samples`` of it); write
    ``out``; return all rows written there so far.

    Everything that can fail early (profile, credentials, device width, run folder) is checked
    before any circuit runs. Finished units in ``out`` are skipped, so a killed evaluation resumes.
    """
    from tqdm.auto import tqdm

    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg, students)
    idx = stratified_subset(data.y_test, max_samples)
    circuits = {g.label: group_student(cfg, data, g) for g in groups}
    backend = prepare_backend(backend_spec, list(circuits.values()))
    dest = RunDir(out)
    previous = json.loads(dest.manifest.read_text()) if dest.manifest.is_file() else None
    subset = {"max_samples": max_samples, "n": int(len(idx)), "of": int(len(data.y_test)), "seed": 0}
    info = _manifest(run, backend, previous, subset)
    _check_same(previous, info, dest.root)
    info["transpilation"] = (previous or {}).get("transpilation", {})
    atomic_write_json(dest.manifest, info)

    pending = [(g, u) for g in groups for u in g.units if not dest.is_done(u)]
    bar = tqdm(total=len(pending), desc=f"evaluate on {backend.name}", disable=not progress, leave=False)
    for group in groups:
        todo = [u for u in group.units if not dest.is_done(u)]
        if not todo:
            continue
        net = load_group(run, cfg, data, group)
        student = net.quantum.student
        info["transpilation"][group.label] = transpilation_stats(backend, student)
        atomic_write_json(dest.manifest, info)
        info["sampling_seeds"].update(_evaluate_group(net, group, todo, backend, data, idx, dest, bar))
    bar.close()
    rows = dest.results()
    write_tables(dest.root, rows)
    info["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(dest.manifest, info)
    return rows


def transpilation_stats(backend: Backend, student: Any) -> dict:
    """Depth, 2-qubit gates and layout of the circuit the backend runs (logical for statevector)."""
    if backend.kind == "statevector":
        logical = student.measured_circuit().decompose(gates_to_decompose=["mux_ry"])
        return {"depth": logical.depth(), "two_qubit_gates": logical.num_nonlocal_gates(), "layout": None}
    measured = backend.kind == "aer" or getattr(backend, "primitive_for", lambda s: "sampler")(student) == "sampler"
    stats = backend.transpiled(student, measured=measured).stats()
    if backend.kind == "aer":
        stats["active_qubits"] = list(backend.compacted(student).physical)
    return stats


def _evaluate_group(net: torch.nn.Module, group: QuantumGroup, todo: Sequence[Unit], backend: Backend,
                    data: Dataset, idx: np.ndarray, dest: RunDir, bar: Any) -> dict[str, int | None]:
    """Evaluate and write each unit of ``todo`` on test samples ``idx``; returns the sampling seeds."""
    x, y = data.x_test[idx], data.y_test[idx]
    index = {u: m for m, u in enumerate(group.units)}
    exact_logits = predict_logits(net, x).double().numpy()
    ref = net.quantum.weights
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=ref.dtype).unsqueeze(0).expand(ref.shape[0], -1, -1)
        exact_out = net.quantum(net.circuit_features(xt)).double().numpy()
    angles = circuit_angles(net, x)
    seeds: dict[str, int | None] = {}
    for unit in todo:
        m = index[unit]
        seed = sampling_seed(backend.profile.seed, unit) if backend.kind == "aer" else getattr(
            backend.profile, "seed", None)
        t0 = time.perf_counter()
        out = backend.readouts(net.quantum.student, ref[m].detach().double().numpy(), angles[m], seed=seed)
        logits = head_logits(net, m, out)
        row = unit_row(unit, backend, y, data.n_classes, exact_logits[m], logits, exact_out[m], out,
                       time.perf_counter() - t0, seed)
        atomic_write_json(dest.unit_dir(unit) / "result.json", row)
        seeds[unit.key] = seed
        bar.update(1)
    return seeds
