"""The robustness study (``qkd reproduce robustness``): does distillation make a quantum student more or
less robust to device noise, and what do the noise-robust variants buy?

The study's config (``configs/robustness.yaml``; digits: ``configs/robustness_digits.yaml``) is an
ordinary experiment config whose student entries are *variants*, told apart by their options
(:func:`variant_of`): ``exact`` (no robustness option), ``readout-norm`` (``readout_norm``),
``approx-embedding`` (``embedding_cx``) and ``noise-aware`` (``noise: <profile>``; such a student is
evaluated only on the device it was trained for). A label ``<student>_<tag>`` names the student
``<student>``. The study then

1. trains every unit (``qkd run`` into ``OUT/run``),
2. calibrates every student's head on each device (``qkd calibrate``: training and validation
   subsets only, never the test split; into ``OUT/run/calibration/<device>``),
3. evaluates it on the test split on each device (``qkd evaluate``, the profile's shots, into
   ``OUT/eval/<device>``), raw (trained head) and calibrated (refitted head); students wider than
   :data:`WIDE_QUBITS` on a fixed class-stratified subset of the test split (:func:`evaluated_samples`,
   into ``OUT/eval-n<samples>/<device>``),
4. writes ``robustness.csv`` / ``robustness.md`` / ``robustness.png`` (:func:`write_robustness_report`).

Every step resumes (finished units are skipped) and writes atomically. A *cell* is (student, variant,
device, read-out): mean and sample std over seeds of the test macro-F1 with and without KD, noisy and
exact, and the KD effect on the noisy F1 paired by seed with the Wilcoxon signed-rank test of
:func:`~qkd_qiskit.summaries.paired_kd_tests`; the p-values of all cells are one family, adjusted by
Benjamini-Hochberg (``p_bh``, ``scipy.stats.false_discovery_control``).

Example:
    >>> from qkd_qiskit.config import ModelConfig
    >>> variant_of(ModelConfig(model="hea", name="hea_nk", options={"noise": "aer-fake-kingston"}))
    ('hea', 'noise-aware', 'aer-fake-kingston')
    >>> variant_of(ModelConfig(model="q2", options={"qubits": 6}))
    ('q2', 'exact', None)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from .backends import load_profile
from .calibrate import calibrate_run
from .config import ExperimentConfig
from .evaluate import evaluate_run, evaluation_dir
from .experiments import run_experiment
from .figures import png_bytes, pyplot
from .strict import read_json
from .summaries import WILCOXON_TEST, benjamini_hochberg, paired_kd_tests, sample_std

DEVICES = ("aer-fake-kingston", "aer-fake-sherbrooke")
"""A Heron (r2) and an Eagle (r3) device profile, 1024 shots each."""
CALIBRATION_SAMPLES, CALIBRATION_VAL_SAMPLES = 60, 30
"""Training / validation circuits per unit and device for the calibrated heads (class-stratified;
``qkd calibrate`` defaults to 300 + 150, but the study calibrates ~600 unit-device pairs, and a
logistic head on <= 6 read-outs needs few samples)."""
VARIANTS = ("exact", "readout-norm", "approx-embedding", "noise-aware")
READOUTS = ("raw", "calibrated", "renormalised")
"""Heads on the noisy read-outs: the trained one; one refitted per device (``qkd calibrate``); for
``readout-norm`` students the trained one standardising with the device's own read-out statistics of
the calibration's training samples (``f1_macro_renormalised`` of ``qkd evaluate``)."""
WIDE_QUBITS, WIDE_TEST_SAMPLES = 6, 120
"""Students on more than ``WIDE_QUBITS`` qubits (option ``qubits``) are evaluated on a class-stratified
subset of ``WIDE_TEST_SAMPLES`` test samples (``qkd evaluate --max-samples``: the same subset for every
unit and device, fixed before any result): a noisy 8-qubit evaluation costs ~0.07-0.35 s per sample
and unit on the PTM path (more in larger batches and on a loaded machine) and ~2.6 s on Aer's (README,
"Robustness study")."""
CELL_COLUMNS = ["student", "variant", "device", "readout", "trained_for", "n_seeds", "n_test", "exact_nokd_mean",
                "exact_nokd_std", "exact_kd_mean", "exact_kd_std", "noisy_nokd_mean", "noisy_nokd_std",
                "noisy_kd_mean", "noisy_kd_std", "mean_diff", "std_diff", "wins", "losses", "p_wilcoxon",
                "p_method", "p_bh"]


def variant_of(entry: Any) -> tuple[str, str, str | None]:
    """``(student, variant, trained_for)`` of a student entry (see the module docstring)."""
    options = entry.options or {}
    label = entry.name or entry.model
    if options.get("noise"):
        variant = "noise-aware"
    elif options.get("readout_norm", "none") != "none":
        variant = "readout-norm"
    elif options.get("embedding_cx") is not None:
        variant = "approx-embedding"
    else:
        return label, "exact", None
    student = label.rsplit("_", 1)[0] if "_" in label and label != entry.model else entry.model
    return student, variant, options.get("noise")


def evaluated_samples(entry: Any) -> int | None:
    """Test samples a student entry is evaluated on: ``None`` (the whole test split) or
    :data:`WIDE_TEST_SAMPLES` for students wider than :data:`WIDE_QUBITS` (see there).

    Example:
        >>> from qkd_qiskit.config import ModelConfig
        >>> wide, default = ModelConfig(model="hasan", options={"qubits": 8}), ModelConfig(model="hea")
        >>> evaluated_samples(wide), evaluated_samples(default)
        (120, None)
    """
    return WIDE_TEST_SAMPLES if (entry.options or {}).get("qubits", 0) > WIDE_QUBITS else None


def evaluation_folder(out: str | Path, device: str, subset: int | None) -> Path:
    """``OUT/eval/<device>`` (whole test split) or ``OUT/eval-n<subset>/<device>``."""
    return Path(out) / ("eval" if subset is None else f"eval-n{subset}") / device_name(device)


def device_name(spec: str) -> str:
    """The profile name of a device spec (a shipped name or a profile file)."""
    return load_profile(spec).name


def evaluated_on(cfg: ExperimentConfig, device: str) -> list[str]:
    """Labels of the student entries evaluated on ``device``: all but the noise-aware ones trained
    for another device."""
    labels = []
    for entry in cfg.students:
        _, variant, trained_for = variant_of(entry)
        if variant != "noise-aware" or device_name(trained_for) == device_name(device):
            labels.append(entry.label)
    return labels


def run_robustness(cfg: ExperimentConfig, out: str | Path, devices: Sequence[str] = DEVICES,
                   samples: int = CALIBRATION_SAMPLES, val_samples: int = CALIBRATION_VAL_SAMPLES,
                   progress: bool = True, log: Callable[[str], None] | None = None, **run_options: Any) -> dict:
    """Train, calibrate, evaluate and report (see the module docstring); returns the report's info.
    Every device profile is loaded (a one-line ValueError) before anything trains.
    ``run_options`` go to :func:`~qkd_qiskit.experiments.run_experiment` (executor, address, chunk size)."""
    start_study(cfg, out, devices, samples, val_samples)
    run_experiment(cfg, Path(out) / "run", progress=progress, log=log, **run_options)
    return evaluate_study(cfg, out, progress=progress, log=log)


def start_study(cfg: ExperimentConfig, out: str | Path, devices: Sequence[str], samples: int, val_samples: int) -> None:
    """Check the devices (one line each) and write ``OUT/robustness.json`` (the study's settings)."""
    if not devices:
        raise ValueError("devices: the study needs at least one device profile")
    for d in devices:
        load_profile(d)
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out) / "robustness.json", {"config": cfg.name, "devices": list(devices),
                                                      "samples": samples, "val_samples": val_samples})


def evaluate_study(cfg: ExperimentConfig, out: str | Path, students: Sequence[str] | None = None,
                   progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Calibrate and evaluate the trained students of ``OUT/run`` (all, or the ``students`` labels) on
    every device of ``OUT/robustness.json``, then write the report (from every unit evaluated so far)."""
    out = Path(out)
    info = read_json(out / "robustness.json", ValueError, "is OUT the --out folder of the robustness study?")
    for device in info["devices"]:
        labels = [s for s in evaluated_on(cfg, device) if students is None or s in students]
        if not labels:
            continue
        calibrate_run(out / "run", device, info["samples"], info["val_samples"], students=labels, progress=progress,
                      log=log)
        subsets = {e.label: evaluated_samples(e) for e in cfg.students}
        for subset in dict.fromkeys(subsets[label] for label in labels):
            evaluate_run(out / "run", device, evaluation_folder(out, device, subset), progress=progress, log=log,
                         students=[label for label in labels if subsets[label] == subset], max_samples=subset)
    return write_robustness_report(out, cfg)


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


def study_rows(out: str | Path, cfg: ExperimentConfig) -> list[dict]:
    """Every evaluated unit of the study folder (from the units' ``result.json``), with its student,
    variant, device and trained-for device."""
    info = read_json(Path(out) / "robustness.json", ValueError, "is OUT the --out folder of the robustness study?")
    entries = {e.label: variant_of(e) for e in cfg.students}
    order = {label: i for i, label in enumerate(entries)}
    rows = []
    subsets = {e.label: evaluated_samples(e) for e in cfg.students}
    for device, subset in [(d, n) for d in info["devices"] for n in dict.fromkeys(subsets.values())]:
        folder = evaluation_folder(out, device, subset)
        if not (folder / "manifest.json").is_file():
            continue
        for r in evaluation_dir(folder).results():
            if r["model"] not in entries or subsets[r["model"]] != subset:  # each student from its own folder
                continue
            student, variant, trained_for = entries[r["model"]]
            rows.append({**r, "student": student, "variant": variant, "device": device_name(device),
                         "trained_for": None if trained_for is None else device_name(trained_for)})
    return sorted(rows, key=lambda r: order[r["model"]])  # students in the config's order


def _stats(values: list[float]) -> tuple[float, float]:
    return (float(np.mean(values)) if values else math.nan), sample_std(values)


def robustness_cells(rows: Sequence[dict]) -> list[dict]:
    """One row per (student, variant, device, read-out) of :func:`study_rows`-like rows (keys
    ``student, variant, device, trained_for, kd, seed, f1_macro_exact, f1_macro_backend,
    f1_macro_calibrated``), with the paired KD test on the noisy F1 and BH over all cells.
    Cells without a seed finished with and without KD are left out.

    Example:
        >>> rows = [{"student": "hea", "variant": "exact", "device": "d", "trained_for": None, "kd": kd,
        ...          "seed": s, "f1_macro_exact": 1.0, "f1_macro_backend": 0.5 + 0.1 * kd + 0.01 * s,
        ...          "f1_macro_calibrated": None} for s in range(6) for kd in (False, True)]
        >>> [(c["readout"], c["n_seeds"], round(c["mean_diff"], 3), c["wins"], round(c["p_wilcoxon"], 4))
        ...  for c in robustness_cells(rows)]
        [('raw', 6, 0.1, 6, 0.0312)]
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["student"], r["variant"], r["device"]), []).append(r)
    cells = []
    for (student, variant, device), rs in groups.items():
        for readout, key in (("raw", "f1_macro_backend"), ("calibrated", "f1_macro_calibrated"),
                             ("renormalised", "f1_macro_renormalised")):
            mine = [r for r in rs if r.get(key) is not None]
            paired = [{"role": "student", "model": "cell", "kd": r["kd"], "seed": r["seed"], "f1_macro": r[key]}
                      for r in mine]
            test = next(iter(paired_kd_tests(paired)), None)
            if test is None:
                continue
            by = {kd: [r for r in mine if bool(r["kd"]) == kd] for kd in (False, True)}
            cell = {"student": student, "variant": variant, "device": device, "readout": readout,
                    "trained_for": rs[0].get("trained_for"), "n_seeds": test["n_pairs"],
                    "n_test": rs[0].get("n_test")}
            for kd, tag in ((False, "nokd"), (True, "kd")):
                cell[f"exact_{tag}_mean"], cell[f"exact_{tag}_std"] = _stats([r["f1_macro_exact"] for r in by[kd]])
                cell[f"noisy_{tag}_mean"], cell[f"noisy_{tag}_std"] = _stats([r[key] for r in by[kd]])
            cells.append({**cell, **{k: test[k] for k in ("mean_diff", "std_diff", "wins", "losses", "p_wilcoxon",
                                                          "p_method")}})
    rank = {v: i for i, v in enumerate(VARIANTS)}
    students = list(dict.fromkeys(r["student"] for r in rows))
    cells.sort(key=lambda c: (students.index(c["student"]), rank.get(c["variant"], 9), c["device"],
                              READOUTS.index(c["readout"])))
    for c, p in zip(cells, benjamini_hochberg([c["p_wilcoxon"] for c in cells])):
        c["p_bh"] = p
    return cells


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}" if v < 1e-3 else f"{v:.3f}"
    return str(v)


def _test_sizes(cells: Sequence[dict]) -> str:
    """A sentence naming the test samples per student where they differ (:func:`evaluated_samples`)."""
    sizes = {c["student"]: c.get("n_test") for c in cells}
    if len(set(sizes.values())) < 2:
        return ""
    return (f" Test samples (students wider than {WIDE_QUBITS} qubits: a fixed class-stratified subset): "
            + ", ".join(f"{s} {n}" for s, n in sizes.items()) + ".")


def markdown(cells: Sequence[dict], info: dict) -> str:
    """The cell table in Markdown, with how it was made."""
    n_bh = sum(c["p_bh"] < 0.05 for c in cells if not math.isnan(c["p_bh"]))
    lines = ["# Robustness study", "",
             f"Test macro-F1, mean +- sample std over seeds, on {', '.join(info.get('devices', []))}; `raw`: the "
             f"trained head on the noisy read-outs, `calibrated`: a head refitted on {info.get('samples')} training + "
             f"{info.get('val_samples')} validation samples per unit and device (never the test split), "
             f"`renormalised` (readout-norm students): the trained head with the device's read-out statistics of "
             f"those training samples. KD effect = "
             f"KD minus no-KD noisy F1 paired by seed, {WILCOXON_TEST}; p_bh: Benjamini-Hochberg over all "
             f"{len(cells)} cells ({n_bh} with p_bh < 0.05).{_test_sizes(cells)}", "",
             "| student | variant | device | read-out | exact no KD | exact KD | noisy no KD | noisy KD | "
             "KD - no KD | wins/losses | p | p_bh |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        pm = lambda t, k: f"{_fmt(c[f'{t}_{k}_mean'])} +- {_fmt(c[f'{t}_{k}_std'])}"
        lines.append(f"| {c['student']} | {c['variant']} | {c['device']} | {c['readout']} | {pm('exact', 'nokd')} | "
                     f"{pm('exact', 'kd')} | {pm('noisy', 'nokd')} | {pm('noisy', 'kd')} | {c['mean_diff']:+.3f} | "
                     f"{c['wins']}/{c['losses']} | {_fmt(c['p_wilcoxon'])} | {_fmt(c['p_bh'])} |")
    return "\n".join(lines) + "\n"


def figure(cells: Sequence[dict]) -> bytes:
    """PNG: one panel per device; a row per (student, variant); noisy test macro-F1 without KD
    (hollow) and with KD (filled), raw (circles), calibrated (squares) and renormalised (triangles),
    exact F1 without KD (grey bar); mean over seeds."""
    plt = pyplot()

    devices = list(dict.fromkeys(c["device"] for c in cells))
    rows = list(dict.fromkeys((c["student"], c["variant"]) for c in cells))
    y = {r: len(rows) - 1 - i for i, r in enumerate(rows)}
    fig, axes = plt.subplots(1, len(devices), figsize=(4.4 * len(devices) + 1.6, 1.4 + 0.3 * len(rows)),
                             sharey=True, squeeze=False)
    for ax, device in zip(axes[0], devices):
        for c in (c for c in cells if c["device"] == device):
            yy = y[(c["student"], c["variant"])]
            marker, dy = {"raw": ("o", 0.15), "calibrated": ("s", -0.15), "renormalised": ("^", 0.0)}[c["readout"]]
            if c["readout"] == "raw":
                ax.plot([c["exact_nokd_mean"]] * 2, [yy - 0.3, yy + 0.3], color="#999", lw=2)
            ax.plot(c["noisy_nokd_mean"], yy + dy, marker, mfc="white", mec="#2f6db5", ms=6)
            ax.plot(c["noisy_kd_mean"], yy + dy, marker, color="#d0542c", ms=5)
        ax.set_title(device, fontsize=10)
        ax.set_xlim(0.1, 1.01)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("test macro-F1 (mean over seeds)", fontsize=8)
    axes[0][0].set_yticks([y[r] for r in rows], [f"{s} / {v}" for s, v in rows], fontsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", mfc="white", mec="#2f6db5", label="raw, no KD"),
               Line2D([], [], marker="o", ls="", color="#d0542c", label="raw, KD"),
               Line2D([], [], marker="s", ls="", mfc="white", mec="#2f6db5", label="calibrated, no KD"),
               Line2D([], [], marker="s", ls="", color="#d0542c", label="calibrated, KD"),
               Line2D([], [], marker="^", ls="", color="#777", label="renormalised (readout-norm)"),
               Line2D([], [], color="#999", lw=2, label="exact (no KD)")]
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Robustness: noisy test macro-F1 per student and variant (1024 shots)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def write_robustness_report(out: str | Path, cfg: ExperimentConfig) -> dict:
    """Write ``robustness.csv``, ``robustness.md`` and ``robustness.png`` into the study folder
    (from whatever units are evaluated so far); returns ``{"cells", "rows"}``."""
    out = Path(out)
    rows = study_rows(out, cfg)
    if not rows:
        raise ValueError(f"OUT: {out} holds no evaluated unit yet")
    info = read_json(out / "robustness.json", ValueError, "is OUT the --out folder of the robustness study?")
    cells = robustness_cells(rows)
    atomic_write_csv(out / "robustness.csv", cells, CELL_COLUMNS)
    atomic_write_text(out / "robustness.md", markdown(cells, info))
    if cells:
        atomic_write_bytes(out / "robustness.png", figure(cells))
    return {"cells": cells, "rows": rows}
