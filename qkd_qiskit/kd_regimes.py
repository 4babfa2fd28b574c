"""The KD-regimes study (``qkd reproduce kd-regimes``): when does distillation help a student?

A *cell* is one (student, ``data.n_train``, ``data.label_noise``, ``kd.temperature``) of the sweep
(``configs/kd_regimes.yaml``). Per cell: mean and sample std (ddof = 1) of test macro-F1 with and
without KD over the seeds, the teacher's mean F1, and the KD effect paired by seed (same init and
data order) with the two-sided Wilcoxon signed-rank test of :func:`~qkd_qiskit.summaries.paired_kd_tests`.
The p-values of all cells form one family. The headline correction is **Benjamini-Hochberg**
(``p_bh``, false-discovery rate, ``scipy.stats.false_discovery_control``): the grid is a screen of
many cells, and with 12 seeds the smallest attainable two-sided Wilcoxon p is ``2 / 2**12 =
0.00049``, so **Holm's step-down method** (``p_holm``, family-wise error rate, also given) cannot
reach 0.05 in a family of more than 102 cells however large an effect is. The figure plots the mean
paired KD gain against ``n_train`` per student, one line per temperature and noise level.

Both corrections live in :mod:`qkd_qiskit.summaries` (:func:`~qkd_qiskit.summaries.holm`,
:func:`~qkd_qiskit.summaries.benjamini_hochberg`).

Example:
    >>> cells = [{"p_wilcoxon": 0.01}, {"p_wilcoxon": 0.04}]
    >>> [round(v, 3) for v in benjamini_hochberg([c["p_wilcoxon"] for c in cells])], holm([0.01, 0.04])
    ([0.02, 0.04], [0.02, 0.04])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_text
from .figures import png_bytes, pyplot
from .rundir import plan_units
from .strict import read_json
from .summaries import WILCOXON_TEST, benjamini_hochberg, group_rows, holm, paired_kd_tests, sample_std
from .sweep import Sweep, combined_rows, expand

AXES = ("data.n_train", "data.label_noise", "kd.temperature")
"""The swept fields that define a cell (besides the student)."""

CELL_COLUMNS = ["student", "n_train", "label_noise", "temperature", "n_seeds", "teacher_f1", "mean_f1_nokd",
                "std_f1_nokd", "mean_f1_kd", "std_f1_kd", "mean_diff", "std_diff", "wins", "losses",
                "p_wilcoxon", "p_method", "p_holm", "p_bh"]


def kd_cells(rows: Sequence[dict], defaults: dict | None = None, students: Sequence[str] = ()) -> list[dict]:
    """One row per (student, n_train, label_noise, temperature) from combined sweep rows (see module
    doc), ordered by ``students`` (then n_train, noise, temperature); ``defaults`` gives an axis's
    value where it was not swept. Cells without a seed finished
    both with and without KD are left out (so they are not in the Holm family either)."""
    rows = [{**{a: (defaults or {}).get(a) for a in AXES}, **r} for r in rows]
    teacher = {k: float(np.mean([r["f1_macro"] for r in rs]))
               for k, rs in group_rows([r for r in rows if r["role"] == "teacher"], AXES).items()}
    cells = []
    for (student, *axes), rs in group_rows([r for r in rows if r["role"] == "student"], ("model", *AXES)).items():
        test = next(iter(paired_kd_tests(rs)), None)
        if test is None:  # no seed with both KD and no KD finished yet (a partial sweep)
            continue
        by = {kd: [r["f1_macro"] for r in rs if bool(r["kd"]) == kd] for kd in (False, True)}
        cells.append({"student": student, "n_train": axes[0], "label_noise": axes[1], "temperature": axes[2],
                      "n_seeds": test["n_pairs"], "teacher_f1": teacher.get(tuple(axes), math.nan),
                      "mean_f1_nokd": float(np.mean(by[False])) if by[False] else math.nan,
                      "std_f1_nokd": sample_std(by[False]),
                      "mean_f1_kd": float(np.mean(by[True])) if by[True] else math.nan,
                      "std_f1_kd": sample_std(by[True]),
                      **{k: test[k] for k in ("mean_diff", "std_diff", "wins", "losses", "p_wilcoxon", "p_method")}})
    rank = {s: i for i, s in enumerate(students)}
    cells.sort(key=lambda c: (rank.get(c["student"], len(rank)), c["n_train"] or 0, c["label_noise"],
                              c["temperature"]))
    p = [c["p_wilcoxon"] for c in cells]
    for c, ph, pb in zip(cells, holm(p), benjamini_hochberg(p)):
        c["p_holm"], c["p_bh"] = ph, pb
    return cells


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}" if v < 1e-3 else f"{v:.3f}"
    return str(v)


def markdown(cells: list[dict], missing_points: list[str]) -> str:
    """The cell table in Markdown, with how the test and the correction were made."""
    n_bh = sum(c["p_bh"] < 0.05 for c in cells if not math.isnan(c["p_bh"]))
    n_holm = sum(c["p_holm"] < 0.05 for c in cells if not math.isnan(c["p_holm"]))
    lines = ["# KD regimes", "", f"Test macro-F1 per cell, mean +- sample std over seeds; KD effect = KD minus "
             f"no-KD F1 paired by seed, {WILCOXON_TEST}. Adjusted over all {len(cells)} cells: p_bh "
             f"Benjamini-Hochberg (false-discovery rate, the headline), p_holm Holm (family-wise error rate). "
             f"{n_bh} cell(s) with p_bh < 0.05, {n_holm} with p_holm < 0.05.", "",
             "| student | n_train | noise | T | teacher F1 | no KD | KD | KD - no KD | wins/losses | p | p_holm | p_bh |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['student']} | {c['n_train']} | {c['label_noise']} | {c['temperature']} | "
                     f"{_fmt(c['teacher_f1'])} | {_fmt(c['mean_f1_nokd'])} +- {_fmt(c['std_f1_nokd'])} | "
                     f"{_fmt(c['mean_f1_kd'])} +- {_fmt(c['std_f1_kd'])} | {c['mean_diff']:+.3f} | "
                     f"{c['wins']}/{c['losses']} | {_fmt(c['p_wilcoxon'])} | {_fmt(c['p_holm'])} | {_fmt(c['p_bh'])} |")
    if missing_points:
        lines += ["", f"## Partial sweep: {len(missing_points)} point(s) not finished", "", ", ".join(missing_points)]
    return "\n".join(lines) + "\n"


def figure(cells: list[dict]) -> bytes:
    """PNG: mean paired KD gain vs n_train (log axis), one panel per student, one line per
    (temperature, noise); filled markers where p_bh < 0.05; error bars = std of the paired
    differences / sqrt(seeds)."""
    plt = pyplot()

    students = list(dict.fromkeys(c["student"] for c in cells))
    temps = sorted({c["temperature"] for c in cells})
    colours = dict(zip(temps, ("#2f6db5", "#d1803b", "#3a9a5b", "#8a4fb0", "#777777")))
    fig, axes = plt.subplots(1, len(students), figsize=(3.6 * len(students) + 1.4, 3.4), sharey=True, squeeze=False)
    for ax, student in zip(axes[0], students):
        for (t, noise), cs in group_rows([c for c in cells if c["student"] == student],
                                         ("temperature", "label_noise")).items():
            cs = sorted(cs, key=lambda c: c["n_train"])
            x = [c["n_train"] for c in cs]
            y = [c["mean_diff"] for c in cs]
            err = [c["std_diff"] / math.sqrt(max(c["n_seeds"], 1)) for c in cs]
            style = "-" if noise == 0 else "--"
            ax.errorbar(x, y, yerr=err, fmt=style, color=colours.get(t, "k"), lw=1.2, capsize=2,
                        label=f"T={t:g}, noise={noise:g}")
            sig = [(xi, yi) for xi, yi, c in zip(x, y, cs) if c["p_bh"] < 0.05]
            if sig:
                ax.plot(*zip(*sig), "o", color=colours.get(t, "k"), ms=5)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xscale("log")
        sizes = sorted({c["n_train"] for c in cells})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_title(student)
        ax.set_xlabel("n_train")
    axes[0][0].set_ylabel("KD gain in test macro-F1 (paired)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("KD gain vs training-set size (dots: Benjamini-Hochberg p < 0.05)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def load_study(out: str | Path) -> tuple[Sweep, list[dict]]:
    """The sweep of a study folder (from its ``sweep.json``) and its combined rows (from the units'
    full-precision ``result.json`` files, never a CSV)."""
    info = read_json(Path(out) / "sweep.json", ValueError, "is OUT the --out folder of a sweep?")
    sweep = expand({**info["config"], "sweep": info["sweep"]}, str(Path(out) / "sweep.json"))
    return sweep, combined_rows(sweep, out)


def write_kd_regimes_report(out: str | Path) -> dict:
    """Write ``kd_regimes.csv``, ``kd_regimes.md`` and ``kd_regimes.png`` into a study folder."""
    out = Path(out)
    sweep, rows = load_study(out)
    if not rows:
        raise ValueError(f"OUT: {out} holds no finished unit yet")
    base = sweep.points[0].config
    defaults = {"data.n_train": base.data.n_train, "data.label_noise": base.data.label_noise,
                "kd.temperature": base.kd.temperature}
    cells = kd_cells(rows, defaults, [s.label for s in base.students])
    done = {p.name: 0 for p in sweep.points}
    for r in rows:
        done[r["point"]] += 1
    missing = [p.name for p in sweep.points if done[p.name] < len(plan_units(p.config))]
    atomic_write_csv(out / "kd_regimes.csv", cells, CELL_COLUMNS)
    atomic_write_text(out / "kd_regimes.md", markdown(cells, missing))
    atomic_write_bytes(out / "kd_regimes.png", figure(cells))
    return {"cells": cells, "missing_points": missing}
