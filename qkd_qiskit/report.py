"""Reports of a run directory: per-(model, kd) summary, paired KD tests and the Fig. 1-style plot.

Everything is recomputed from ``results.csv``'s source of truth (the finished units), so a report of
a partial run is possible and says which units are missing.

Example:
    >>> write_report("runs/piperno2024")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_text
from .config import parse_config
from .figures import png_bytes, pyplot
from .outdir import check_output_dir
from .rundir import RunDir, plan_units, training_dir
from .summaries import WILCOXON_TEST, grid_summary, paired_kd_tests, run_summary

SUMMARY_COLUMNS = ["model", "kd", "mean_f1", "var_f1", "std_f1", "n_params", "n_seeds", "mean_epochs",
                   "mean_accuracy", "mean_f1_weighted"]


def report_folder(run_dir: str | Path) -> RunDir:
    """The `qkd run` folder to report on, checked: a folder another command wrote (evaluation,
    calibration, jobs), a damaged manifest, or one that cannot be written is one line saying what it
    is and what to pass instead."""
    run = training_dir(run_dir)
    root = run.root
    if not root.is_dir():
        raise ValueError(f"RUN_DIR: {root} is not a folder (pass the --out folder of a `qkd run`)")
    if (root / "jobs.json").is_file():
        raise ValueError(f"RUN_DIR: {root} is a `qkd submit` jobs folder (`qkd collect` writes its results.csv "
                         f"and summary.csv); `qkd report` takes the run folder: qkd report {root.parent.parent}")
    manifest = run.read_manifest()
    if manifest is not None and "config" not in manifest:
        if "backend" in manifest:
            kind = "qkd calibrate" if "train_subset" in manifest else "qkd evaluate"
            raise ValueError(f"RUN_DIR: {root} is a `{kind}` output folder (its tables are results.csv and "
                             f"summary.csv); `qkd report` takes the `qkd run` folder: qkd report "
                             f"{manifest.get('run', 'RUN_DIR')}")
        raise ValueError(f"RUN_DIR: {run.manifest} has no config: {root} is not a `qkd run` folder")
    if not (root / "units").is_dir():
        raise ValueError(f"RUN_DIR: {root} holds no finished units (is it a qkd run directory?)")
    check_output_dir(root, "RUN_DIR", in_use_ok=True)  # the report is written into the run folder
    return run


def _config(run: RunDir) -> dict | None:
    return (run.read_manifest() or {}).get("config")


def missing_units(run: RunDir) -> list[str]:
    """Units the run's config asks for that are not finished (empty for a complete run)."""
    config = _config(run)
    if config is None:
        return []
    cfg = parse_config(config, str(run.manifest))
    return [u.key for u in plan_units(cfg) if not run.is_done(u)]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def markdown(summary: list[dict], tests: list[dict], missing: list[str]) -> str:
    cols = ["model", "kd", "mean_f1", "std_f1", "var_f1", "n_params", "n_seeds", "mean_epochs"]
    lines = ["# Summary", "", "Test macro-F1 over seeds (model selection on validation loss).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f"{s[c]:.2e}" if c == "var_f1" else _fmt(s[c]) for c in cols) + " |"
              for s in summary]
    lines += ["", "## Knowledge distillation, paired over seeds", "",
              "KD minus no-KD test macro-F1 for the same seed (same init and data order); "
              f"{WILCOXON_TEST}. p method: which of these gave p. kd_tests.csv also has the textbook "
              "variant that drops zero differences first (p_wilcoxon_drop_zeros).", "",
              "| model | pairs | mean diff | median diff | wins/losses | p (Wilcoxon) | p method | note |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t['model']} | {t['n_pairs']} | {t['mean_diff']:+.4f} | {t['median_diff']:+.4f} | "
              f"{t['wins']}/{t['losses']} | {_fmt(t['p_wilcoxon'])} | {t.get('p_method', '')} | {t['note']} |"
              for t in tests]
    if missing:
        lines += ["", f"## Partial run: {len(missing)} unit(s) missing", "", ", ".join(missing)]
    return "\n".join(lines) + "\n"


VERTICAL_MAX_MODELS = 10
"""Up to this many students figure1.png has vertical bars (the paper's Fig. 1); more get one row each."""


def figure_object(summary: list[dict], title: str):
    """The matplotlib figure of :func:`figure`. Up to :data:`VERTICAL_MAX_MODELS` students: grouped
    vertical bars of mean F1, KD vs no KD, variance on top, parameter count at the base (the paper's
    Fig. 1). More students (the Hasan grid): one row per student, horizontal bars, the parameter count
    in the label and ``mean +- std`` at the bar's end, so the figure stays a readable size."""
    plt = pyplot()
    students = [s for s in summary if not s["model"].endswith("(teacher)")]
    models = list(dict.fromkeys(s["model"] for s in students))
    get = {(s["model"], s["kd"]): s for s in students}
    params = {m: next(s["n_params"] for s in students if s["model"] == m) for m in models}
    low = max(0.0, math.floor((min((s["mean_f1"] - s["std_f1"] for s in students), default=1.0) - 0.05) * 10) / 10)
    bars = ((-1, False, "#9aa5b1", "without KD"), (1, True, "#2f6db5", "with KD"))
    if len(models) > VERTICAL_MAX_MODELS:
        height = 0.36
        fig, ax = plt.subplots(figsize=(8.5, 1.6 + 0.48 * len(models)))
        y = np.arange(len(models))[::-1]
        for sign, kd, colour, label in bars:
            rows = [(y[i] - sign * height / 2, get[(m, kd)]) for i, m in enumerate(models) if (m, kd) in get]
            if not rows:
                continue
            pos, ss = zip(*rows)
            ax.barh(pos, [s["mean_f1"] - low for s in ss], height, left=low, color=colour, label=label,
                    xerr=[s["std_f1"] for s in ss], capsize=2, ecolor="#333")
            for p, s in zip(pos, ss):
                ax.text(min(s["mean_f1"] + s["std_f1"], 1.0) + 0.005 * (1 - low), p,
                        f"{s['mean_f1']:.3f} ± {s['std_f1']:.3f}", va="center", fontsize=7)
        ax.set_yticks(y, [f"{m} ({params[m]} params)" for m in models], fontsize=8)
        ax.set_xlim(low, 1.0 + 0.2 * (1.0 - low))
        ax.set_xlabel("test macro-F1 (mean over seeds, bar = std)" + (f"; axis starts at {low:g}" if low else ""))
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        ax.set_title(title, fontsize=10, pad=22)
        fig.tight_layout()
        return fig
    width = 0.38
    x = np.arange(len(models))
    rotate = max((len(m) for m in models), default=0) > 12
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(models) + 2), 4.6 + (0.8 if rotate else 0)))
    for sign, kd, colour, label in bars:
        for i, m in enumerate(models):
            s = get.get((m, kd))
            if s is None:
                continue
            ax.bar(x[i] + sign * width / 2, s["mean_f1"], width, color=colour, label=label, yerr=s["std_f1"],
                   capsize=3, ecolor="#333")
            ax.text(x[i] + sign * width / 2, s["mean_f1"] + s["std_f1"] + 0.004, f"var\n{s['var_f1']:.1e}",
                    ha="center", va="bottom", fontsize=6.5)
    for i, m in enumerate(models):
        ax.text(x[i], low + 0.01 * (1.1 - low), f"{params[m]}\nparams", ha="center", va="bottom", fontsize=7,
                color="white", fontweight="bold")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_xticks(x, models, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    top = max([1.0] + [s["mean_f1"] + s["std_f1"] for s in students])
    ax.set_ylim(low, top + 0.15 * (1.0 - low))  # room for the variance labels above the error bars
    ax.set_ylabel("test macro-F1 (mean over seeds, bar = std)" + (f"\naxis starts at {low:g}" if low else ""))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def figure(summary: list[dict], title: str) -> bytes:
    """figure1.png: mean test F1 per student, KD vs no KD (see :func:`figure_object`)."""
    return png_bytes(figure_object(summary, title), dpi=130)


def _in_config_order(run: RunDir, rows: list[dict]) -> list[dict]:
    """Rows ordered as the config lists its models (teacher first), else as found."""
    config = _config(run)
    if config is None:
        return rows
    cfg = parse_config(config, str(run.manifest))
    order = {(u.role, u.model, u.kd): i for i, u in enumerate(reversed(plan_units(cfg)))}
    return sorted(rows, key=lambda r: (-order.get((r["role"], r["model"], r["kd"]), -1), r["seed"]))


def write_report(run_dir: str | Path) -> dict:
    """Write summary.csv, summary.md and figure1.png into ``run_dir``; return what was written."""
    run = report_folder(run_dir)
    rows = _in_config_order(run, run.results())
    run.write_results_csv()
    summary = run_summary(rows)
    tests = paired_kd_tests(rows)
    missing = missing_units(run)
    atomic_write_csv(run.root / "summary.csv", summary, SUMMARY_COLUMNS)
    atomic_write_csv(run.root / "kd_tests.csv", tests, list(tests[0]) if tests else ["model"])
    atomic_write_text(run.root / "summary.md", markdown(summary, tests, missing))
    name = (_config(run) or {}).get("name", run.root.name)
    n_seeds = max((s["n_seeds"] for s in summary), default=0)
    atomic_write_bytes(run.root / "figure1.png", figure(summary, f"{name}: {n_seeds} seeds"))
    return {"summary": summary, "tests": tests, "missing": missing}


# --------------------------------------------------------------------------------------------------
# Hasan & Mahdy study: accuracy by qubits x reduction x encoding, KD vs no KD
# --------------------------------------------------------------------------------------------------

HASAN_PAPER_ERRORS = {("mnist", 4): 0.22, ("mnist", 8): 0.10, ("fashion_mnist", 4): 0.23,
                      ("fashion_mnist", 8): 0.16, ("cifar10", 4): 0.75, ("cifar10", 8): 0.68}
"""Test error of FC + amplitude students read off Hasan & Mahdy's v2 figure (approximate; docs/papers.md)."""

HASAN_COLUMNS = ["student", "qubits", "reduction", "encoding", "kd", "mean_accuracy", "std_accuracy",
                 "mean_f1", "n_seeds", "n_params", "mean_epochs"]


def hasan_markdown(summary: list[dict], dataset: str, missing: list[str]) -> str:
    """Table: one row per grid cell, test accuracy without / with KD (mean +- std over seeds)."""
    teacher = [s for s in summary if s["student"].endswith("(teacher)")]
    by = {(s["student"], s["kd"]): s for s in summary if not s["student"].endswith("(teacher)")}
    labels = list(dict.fromkeys(label for label, _ in by))
    lines = [f"# Hasan & Mahdy study on {dataset}", "",
             "Test accuracy, mean +- std over seeds (best epoch selected on validation loss).", ""]
    for t in teacher:
        lines.append(f"Teacher {t['student']}: {t['mean_accuracy']:.4f} +- {t['std_accuracy']:.4f} "
                     f"({t['n_params']} parameters, {t['n_seeds']} seeds)")
    lines += ["", "| student | qubits | reduction | encoding | params | no KD | KD | KD - no KD |",
              "|---|---|---|---|---|---|---|---|"]

    def cell(s):
        return "-" if s is None else f"{s['mean_accuracy']:.4f} +- {s['std_accuracy']:.4f}"

    for label in labels:
        off, on = by.get((label, False)), by.get((label, True))
        ref = on or off
        diff = f"{on['mean_accuracy'] - off['mean_accuracy']:+.4f}" if on and off else "-"
        lines.append(f"| {label} | {ref['qubits']} | {ref['reduction']} | {ref['encoding']} | {ref['n_params']} | "
                     f"{cell(off)} | {cell(on)} | {diff} |")
    refs = [(q, e) for (d, q), e in HASAN_PAPER_ERRORS.items() if d == dataset]
    if refs:
        lines += ["", "Paper (v2 figure, approximate), FC + amplitude test error vs this run (KD):", ""]
        for q, err in refs:
            s = by.get((f"q{q}_fc_amplitude", True))
            ours = f"{1 - s['mean_accuracy']:.3f}" if s else "not run"
            lines.append(f"- {q} qubits: paper {err:.2f}, here {ours}")
    if missing:
        lines += ["", f"## Partial run: {len(missing)} unit(s) missing", "", ", ".join(missing)]
    return "\n".join(lines) + "\n"


def hasan_figure(summary: list[dict], title: str) -> bytes:
    """hasan_<dataset>.png (see :func:`hasan_figure_object`)."""
    return png_bytes(hasan_figure_object(summary, title), dpi=120)


def hasan_figure_object(summary: list[dict], title: str):
    """One panel per qubit count: test accuracy by reduction (groups) and encoding (colours), KD
    (solid) vs no KD (hatched), std as error bars; the teacher as a dashed line; the legend in a row
    under the panels, clear of the bars."""
    plt = pyplot()
    students = [s for s in summary if not s["student"].endswith("(teacher)")]
    teacher = [s for s in summary if s["student"].endswith("(teacher)")]
    qubits = sorted({s["qubits"] for s in students})
    reductions = list(dict.fromkeys(s["reduction"] for s in students))
    encodings = list(dict.fromkeys(s["encoding"] for s in students))
    colours = ["#2f6db5", "#e08a2c", "#3a9e5c", "#a04fb0"]
    get = {(s["qubits"], s["reduction"], s["encoding"], s["kd"]): s for s in students}
    fig, axes = plt.subplots(1, max(1, len(qubits)), figsize=(6.2 * max(1, len(qubits)), 4.4), squeeze=False)
    width = 0.8 / max(1, 2 * len(encodings))
    for ax, q in zip(axes[0], qubits):
        x = np.arange(len(reductions))
        for j, enc in enumerate(encodings):
            for k, kd in enumerate((False, True)):
                off = (2 * j + k - (2 * len(encodings) - 1) / 2) * width
                vals = [get.get((q, r, enc, kd)) for r in reductions]
                ax.bar(x + off, [v["mean_accuracy"] if v else 0 for v in vals], width,
                       yerr=[v["std_accuracy"] if v else 0 for v in vals], capsize=2, ecolor="#333",
                       color=colours[j % len(colours)], alpha=1.0 if kd else 0.45,
                       hatch=None if kd else "//", edgecolor="white" if kd else "#555",
                       label=f"{enc}, {'KD' if kd else 'no KD'}")
        for t in teacher:
            ax.axhline(t["mean_accuracy"], ls="--", color="#444", lw=1, label="teacher")
        ax.set_xticks(x, reductions)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{q} qubits", fontsize=10)
        ax.set_ylabel("test accuracy (mean over seeds, bar = std)")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower center", ncol=min(4, len(uniq)), frameon=False)
    return fig


def write_hasan_report(run_dir: str | Path) -> dict:
    """Write hasan_summary.csv, hasan_summary.md and hasan_<dataset>.png into a Hasan-study run dir."""
    run = report_folder(run_dir)
    config = _config(run)
    if config is None:
        raise ValueError(f"RUN_DIR: {run.root} has no manifest.json (is it a qkd run directory?)")
    dataset = config["data"]["name"]
    summary = grid_summary(run.results(), config)
    missing = missing_units(run)
    atomic_write_csv(run.root / "hasan_summary.csv", summary, HASAN_COLUMNS)
    atomic_write_text(run.root / "hasan_summary.md", hasan_markdown(summary, dataset, missing))
    n_seeds = max((s["n_seeds"] for s in summary), default=0)
    atomic_write_bytes(run.root / f"hasan_{dataset}.png",
                       hasan_figure(summary, f"{config['name']}: test accuracy, {n_seeds} seeds"))
    return {"summary": summary, "missing": missing, "dataset": dataset}
