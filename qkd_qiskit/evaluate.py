"""Noisy evaluation: every trained quantum student of a run, re-evaluated on a backend profile.

The students of ``qkd run`` are trained on the exact engine. Here each one (model x kd x seed)
is evaluated on its test split twice - exactly, and on the backend (Aer noise model or IBM
Runtime) - through the *same* classical head, so the two macro-F1 scores sit side by side.

Output folder (resumable, atomic and locked like ``qkd run``; a unit is finished iff its
``result.json`` parses, see :func:`evaluation_dir`): ``units/<unit>/result.json``, ``results.csv`` (one row per unit), ``summary.csv``
(mean/std per model x kd), ``exact_vs_backend.png`` (the summary as a figure), ``manifest.json``
(backend, shots, seeds, device, transpilation stats).

Trained students are rebuilt by :mod:`qkd_qiskit.trained`; summaries come from
:mod:`qkd_qiskit.summaries`.

Example:
    >>> rows = evaluate_run("runs/xor_quantum", "aer-fake-sherbrooke", "runs/xor_quantum/eval-sherbrooke")  # doctest: +SKIP
    >>> print(format_summary(backend_summary(rows)))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json
from .backends import Backend, Profile, prepare_backend
from .calibrate import CalibratedHead, backend_of, calibrated_logits, keep_backend, load_heads
from .data import Dataset, stratified_subset
from .distill import classification_metrics, predict_logits
from .executors import Executor, Task, TasksFailed, check_executor, chunk_name, chunked, make_executor, run_tasks
from .figures import png_bytes, pyplot
from .noisy import ptm_sampler, sampled_readouts
from .outdir import check_output_dir, lock_output_dir
from .progress import progress_bar
from .rundir import UNIT_KEYS, RunDir, Unit, finish_manifest, run_manifest, unit_seed
from .summaries import backend_summary
from .threads import thread_info
from .trained import QuantumGroup, circuit_angles, from_states, group_student, head_logits, load_run, quantum_groups

EVAL_COLUMNS = ["model", "kd", "seed", "backend", "f1_macro_exact", "f1_macro_backend", "f1_macro_calibrated",
                "f1_macro_renormalised",
                "f1_macro_delta", "accuracy_exact", "accuracy_backend", "accuracy_calibrated", "f1_weighted_exact", "f1_weighted_backend",
                "prediction_agreement", "readout_mean_abs_error", "n_test", "shots", "sampling_seed",
                "eval_seconds"]
SUMMARY_COLUMNS = ["model", "kd", "seeds", "f1_exact_mean", "f1_exact_std", "f1_backend_mean", "f1_backend_std",
                   "f1_calibrated_mean", "f1_calibrated_std", "f1_delta_mean", "accuracy_exact_mean",
                   "accuracy_backend_mean", "accuracy_calibrated_mean"]
def renormalised_logits(net: torch.nn.Module, m: int, head: CalibratedHead | None,
                        readouts: np.ndarray) -> np.ndarray | None:
    """Logits of a student with a read-out normalisation (option ``readout_norm``) whose statistics
    are those of the backend's read-outs of the calibration's training samples (the calibrated
    head's scaler) instead of the trained ones: QuantumNAT's post-measurement normalisation, the
    trained head unchanged. None for other students or uncalibrated units."""
    if head is None or getattr(net, "readout_norm", None) is None:
        return None
    stats = (torch.as_tensor(head.mean, dtype=torch.float64), torch.as_tensor(head.scale, dtype=torch.float64) ** 2)
    return head_logits(net, m, readouts, stats)


def unit_row(unit: Unit, backend: Backend, y: np.ndarray, n_classes: int, exact_logits: np.ndarray,
             backend_logits: np.ndarray, exact_out: np.ndarray, backend_out: np.ndarray, seconds: float,
             seed: int | None, calibrated_logits: np.ndarray | None = None,
             renormalised_logits: np.ndarray | None = None) -> dict:
    """Exact, backend (trained head on noisy read-outs) and, when the unit was calibrated on this
    backend, calibrated (the refitted head on the same noisy read-outs) metrics side by side; for
    read-out-normalised students also ``f1_macro_renormalised`` (:func:`renormalised_logits`)."""
    pe, pb = exact_logits.argmax(-1), backend_logits.argmax(-1)
    me, mb = classification_metrics(y, pe, n_classes), classification_metrics(y, pb, n_classes)
    mc = None if calibrated_logits is None else classification_metrics(y, calibrated_logits.argmax(-1), n_classes)
    mr = None if renormalised_logits is None else classification_metrics(y, renormalised_logits.argmax(-1), n_classes)
    return {"model": unit.model, "role": unit.role, "kd": unit.kd, "seed": unit.seed, "backend": backend.name,
            "f1_macro_exact": me["f1_macro"], "f1_macro_backend": mb["f1_macro"],
            "f1_macro_calibrated": None if mc is None else mc["f1_macro"],
            "f1_macro_renormalised": None if mr is None else mr["f1_macro"],
            "f1_macro_delta": mb["f1_macro"] - me["f1_macro"],
            "accuracy_exact": me["accuracy"], "accuracy_backend": mb["accuracy"],
            "accuracy_calibrated": None if mc is None else mc["accuracy"],
            "f1_weighted_exact": me["f1_weighted"], "f1_weighted_backend": mb["f1_weighted"],
            "prediction_agreement": float((pe == pb).mean()),
            "readout_mean_abs_error": float(np.abs(exact_out - backend_out).mean()),
            "n_test": int(len(y)), "shots": backend.shots, "sampling_seed": seed,
            "eval_seconds": round(seconds, 4),
            "confusion_matrix_backend": mb["confusion_matrix"]}


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def format_summary(summary: Sequence[dict]) -> str:
    """Plain-text table of :func:`~qkd_qiskit.summaries.backend_summary` (mean ± std over seeds)."""
    w = max([13, *(len(s["model"]) + 2 for s in summary)])
    lines = [f"{'model':<{w}}{'kd':<7}{'seeds':>5}  {'f1_exact':>13}  {'f1_backend':>13}  {'f1_calibrated':>13}  "
             f"{'delta':>8}  {'acc_backend':>11}"]
    for s in summary:
        exact = f"{s['f1_exact_mean']:.4f}±{s['f1_exact_std']:.3f}"
        noisy = f"{s['f1_backend_mean']:.4f}±{s['f1_backend_std']:.3f}"
        calibrated = "-" if s.get("f1_calibrated_mean") is None else \
            f"{s['f1_calibrated_mean']:.4f}±{s['f1_calibrated_std']:.3f}"
        lines.append(f"{s['model']:<{w}}{str(s['kd']):<7}{s['seeds']:>5}  {exact:>13}  {noisy:>13}  {calibrated:>13}  "
                     f"{s['f1_delta_mean']:>+8.4f}  {s['accuracy_backend_mean']:>11.4f}")
    return "\n".join(lines)


def write_tables(folder: Path, rows: list[dict]) -> list[dict]:
    """``results.csv``, ``summary.csv`` and ``exact_vs_backend.png`` of ``folder``; returns the summary."""
    atomic_write_csv(folder / "results.csv", rows, EVAL_COLUMNS)
    summary = backend_summary(rows)
    atomic_write_csv(folder / "summary.csv", summary, SUMMARY_COLUMNS)
    if summary:
        atomic_write_bytes(folder / "exact_vs_backend.png", exact_vs_backend_png(summary, str(rows[0]["backend"])))
    return summary


def exact_vs_backend_figure(summary: Sequence[dict], backend: str) -> Any:
    """Matplotlib figure of a :func:`~qkd_qiskit.summaries.backend_summary`: one row per student, a
    panel without and one with KD; exact macro-F1 (hollow) joined to the backend's (filled), mean
    over seeds with the std as error bars."""
    plt = pyplot()

    models = list(dict.fromkeys(s["model"] for s in summary))
    get = {(s["model"], bool(s["kd"])): s for s in summary}
    y = np.arange(len(models))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 1.7 + 0.34 * len(models)), sharey=True, squeeze=False)
    for ax, kd in zip(axes[0], (False, True)):
        for i, m in enumerate(models):
            s = get.get((m, kd))
            if s is None:
                continue
            ax.plot([s["f1_exact_mean"], s["f1_backend_mean"]], [y[i], y[i]], color="#bbb", lw=2, zorder=1)
            ax.errorbar(s["f1_exact_mean"], y[i], xerr=s["f1_exact_std"], fmt="o", mfc="white", mec="#555",
                        ecolor="#555", capsize=2, label="exact", zorder=2)
            ax.errorbar(s["f1_backend_mean"], y[i], xerr=s["f1_backend_std"], fmt="o", color="#d0542c",
                        capsize=2, label=backend, zorder=3)
        ax.set_title("with KD" if kd else "without KD", fontsize=10)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("test macro-F1 (mean over seeds, bar = std)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, models, fontsize=8)
    axes[0][0].set_ylim(-0.7, len(models) - 0.3)
    handles, labels = axes[0][0].get_legend_handles_labels() if any(not k for _, k in get) else \
        axes[0][1].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.suptitle(f"exact vs {backend}: test macro-F1 per student", fontsize=10)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))  # 0.4 in under the panels for the legend
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    return fig


def exact_vs_backend_png(summary: Sequence[dict], backend: str) -> bytes:
    """``exact_vs_backend.png`` (see :func:`exact_vs_backend_figure`)."""
    return png_bytes(exact_vs_backend_figure(summary, backend))


# --------------------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------------------


def evaluation_dir(root: str | Path) -> RunDir:
    """An evaluation (or collected jobs) folder: a unit is finished when its ``result.json`` holds
    its exact and backend scores."""
    return RunDir(root, UNIT_KEYS + ("f1_macro_exact", "f1_macro_backend"))


def _check_same(previous: dict | None, info: dict, out: Path) -> None:
    if not previous:
        return
    if "config" in previous:
        raise ValueError(f"out: {out} is a `qkd run` folder; choose another --out")
    if "test_subset" not in previous and info["test_subset"]["max_samples"] is None:
        previous = {**previous, "test_subset": info["test_subset"]}  # folders from before subsets existed
    if any(previous.get(k) != info[k] for k in ("run", "backend", "test_subset")):
        raise ValueError(f"out: {out} holds an evaluation of another run, backend profile or test subset; "
                         "choose another --out")


def evaluate_run(run_dir: str | Path, backend_spec: str | Path | Profile, out: str | Path,
                 progress: bool = True, log: Callable[[str], None] | None = None,
                 students: Sequence[str] | None = None, max_samples: int | None = None,
                 executor: str | Executor = "local", address: str | None = None,
                 chunk_size: int | None = None) -> list[dict]:
    """Evaluate every trained quantum student of ``run_dir`` (or the named ``students`` entries)
    on a backend, on the test split (or a stratified subset of ``max_samples`` of it); write
    ``out``; return all rows written there so far.

    Everything that can fail early (``out``: a file, read-only, in use; profile, credentials, device
    width, run folder) is checked before any circuit runs; ``out`` is locked while it is written
    (:mod:`qkd_qiskit.outdir`). Finished units in ``out`` are skipped, so a killed evaluation resumes.

    ``executor`` (a name, made after those checks, or an executor object) runs chunks of up to
    ``chunk_size`` units of one group (:mod:`qkd_qiskit.executors`); each row is the same whatever
    the executor or chunk. Chunks that fail for good are a
    :class:`~qkd_qiskit.executors.TasksFailed` raised once every other unit is written.
    """
    if isinstance(executor, str):
        check_executor(executor, address, chunk_size)
    check_output_dir(out)
    if Path(out).resolve() == Path(run_dir).resolve():
        raise ValueError(f"out: {out} is the run folder itself; choose another --out (e.g. {Path(run_dir) / 'eval'})")
    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg, students)
    idx = stratified_subset(data.y_test, max_samples)
    circuits = {g.label: group_student(cfg, data, g) for g in groups}
    backend = prepare_backend(backend_spec, list(circuits.values()))
    heads = load_heads(run.root, backend.name)
    with lock_output_dir(out):
        ex = make_executor(executor, address, chunk_size) if isinstance(executor, str) else executor
        try:
            return _evaluate_into(evaluation_dir(out), run, cfg, data, groups, idx, max_samples, keep_backend(backend),
                                  heads, progress, log, ex)
        finally:
            if ex is not executor:
                ex.close()


def _evaluate_into(dest: RunDir, run: RunDir, cfg: Any, data: Dataset, groups: Sequence[QuantumGroup],
                   idx: np.ndarray, max_samples: int | None, backend: Backend, heads: dict[str, CalibratedHead],
                   progress: bool, log: Callable[[str], None] | None, executor: Executor) -> list[dict]:
    previous = dest.read_manifest()
    subset = {"max_samples": max_samples, "n": int(len(idx)), "of": int(len(data.y_test)), "seed": 0}
    info = run_manifest({"run": str(run.root.resolve()), "backend": backend.describe(), "test_subset": subset,
                         "transpilation": {}, "sampling_seeds": (previous or {}).get("sampling_seeds", {}),
                         "torch_threads": thread_info()},
                        previous)
    _check_same(previous, info, dest.root)
    info["transpilation"] = (previous or {}).get("transpilation", {})
    atomic_write_json(dest.manifest, info)

    pending = [(g, u) for g in groups for u in g.units if not dest.is_done(u)]
    for _, u in pending:
        why = dest.damaged(u)
        if why and log is not None:
            log(f"{why}: evaluating {u.key} again")
    bar = progress_bar(total=len(pending), desc=f"evaluate on {backend.name}", unit="unit", enabled=progress,
                       leave=False, lines=True)
    info["executor"] = executor.describe()
    tasks = _evaluation_tasks(run, cfg, data, groups, dest, backend, idx, heads, executor.chunk_size,
                              info["transpilation"])
    atomic_write_json(dest.manifest, info)

    def save(task: Task, rows: list) -> None:
        for unit, row in rows:
            atomic_write_json(dest.unit_dir(unit) / "result.json", row)
            info["sampling_seeds"][unit.key] = row["sampling_seed"]
            bar.update(1)
        atomic_write_json(dest.manifest, info)

    failed = run_tasks(executor, tasks, save)
    bar.close()
    rows = dest.results()
    write_tables(dest.root, rows)
    if failed:
        raise TasksFailed(failed)
    finish_manifest(dest.manifest, info)
    return rows


def _evaluation_tasks(run: RunDir, cfg: Any, data: Dataset, groups: Sequence[QuantumGroup], dest: RunDir,
                      backend: Backend, idx: np.ndarray, heads: dict[str, CalibratedHead], chunk_size: int | None,
                      transpilation: dict) -> list[Task]:
    """A task per chunk of each group's unfinished units; each such group's transpilation stats go
    into ``transpilation``."""
    tasks = []
    for group in groups:
        todo = [u for u in group.units if not dest.is_done(u)]
        if not todo:
            continue
        transpilation[group.label] = transpilation_stats(backend, group_student(cfg, data, group))
        states = tuple(run.load_checkpoint(u)["state"] for u in group.units)
        for c in chunked(todo, chunk_size):
            mine = {u.key: heads[u.key] for u in c if u.key in heads}
            chunk = EvalChunk(cfg, data, group, states, tuple(c), backend.profile, idx, mine)
            tasks.append(Task(chunk_name([u.key for u in c]), evaluate_chunk, chunk))
    return tasks


@dataclass(frozen=True)
class EvalChunk:
    """Units of one group to evaluate, and everything a worker needs for them (picklable, no run
    file): the dataset, the checkpoint states of *every* unit of the group (the worker rebuilds the
    same ensemble whatever the chunk), the backend profile, test indices and calibrated heads."""

    cfg: Any
    data: Dataset
    group: QuantumGroup
    states: tuple[dict, ...]
    units: tuple[Unit, ...]
    profile: Profile
    idx: np.ndarray
    heads: dict[str, CalibratedHead]


def evaluate_chunk(chunk: EvalChunk) -> list[tuple[Unit, dict]]:
    """Each unit's result row (:func:`unit_row`). Runs on an executor's worker; writes nothing."""
    net = from_states(chunk.cfg, chunk.data, chunk.group.units, dict(chunk.group.options), chunk.states).eval()
    return _evaluate_group(net, chunk.group, chunk.units, backend_of(chunk.profile), chunk.data, chunk.idx,
                           chunk.heads)


def transpilation_stats(backend: Backend, student: Any) -> dict:
    """Depth, 2-qubit gates and layout of the circuit the backend runs (logical for statevector)."""
    if backend.kind == "statevector":
        logical = student.measured_circuit().decompose(gates_to_decompose=["mux_ry"])
        return {"depth": logical.depth(), "two_qubit_gates": logical.num_nonlocal_gates(), "layout": None}
    measured = backend.kind == "aer" or getattr(backend, "primitive_for", lambda s: "sampler")(student) == "sampler"
    stats = backend.transpiled(student, measured=measured).stats()
    if backend.kind == "aer":
        stats["active_qubits"] = list(backend.compacted(student).physical)
        sampler = ptm_sampler(backend, student)  # which path computes the noisy probabilities
        stats["noisy_probabilities"] = "aer" if sampler is None else f"ptm-{sampler.mode}"
    return stats


def _evaluate_group(net: torch.nn.Module, group: QuantumGroup, todo: Sequence[Unit], backend: Backend,
                    data: Dataset, idx: np.ndarray, heads: dict[str, CalibratedHead]) -> list[tuple[Unit, dict]]:
    """Evaluate each unit of ``todo`` on test samples ``idx`` (with its calibrated head from
    ``heads`` when there is one); returns ``(unit, row)`` pairs."""
    x, y = data.x_test[idx], data.y_test[idx]
    index = {u: m for m, u in enumerate(group.units)}
    exact_logits = predict_logits(net, x).double().numpy()
    ref = net.quantum.weights
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=ref.dtype).unsqueeze(0).expand(ref.shape[0], -1, -1)
        exact_out = net.quantum(net.circuit_features(xt)).double().numpy()
    angles = circuit_angles(net, x)
    rows = []
    for unit in todo:
        m = index[unit]
        seed = unit_seed(backend.profile.seed, unit) if backend.kind == "aer" else getattr(
            backend.profile, "seed", None)
        t0 = time.perf_counter()
        out = sampled_readouts(backend, net.quantum.student, ref[m].detach().double().numpy(), angles[m], seed=seed)
        logits = head_logits(net, m, out)
        row = unit_row(unit, backend, y, data.n_classes, exact_logits[m], logits, exact_out[m], out,
                       time.perf_counter() - t0, seed, calibrated_logits(heads, unit, out),
                       renormalised_logits(net, m, heads.get(unit.key), out))
        rows.append((unit, row))
    return rows
