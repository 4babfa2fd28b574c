"""Per-group summaries of result rows: the one home for grouping rows (first-seen order), sample
statistics over seeds, and the paired KD test.

Used by ``qkd report`` (training runs, the Hasan grid) and ``qkd evaluate`` / ``qkd collect``
(exact vs backend). Variances and standard deviations are the sample ones (``ddof=1``; 0 for one
seed).

Example:
    >>> rows = [{"model": "hea", "kd": kd, "seed": s, "role": "student", "f1_macro": f}
    ...         for kd, s, f in [(False, 0, 0.5), (True, 0, 0.75), (False, 1, 0.5), (True, 1, 1.0)]]
    >>> list(group_rows(rows, ("model", "kd")))
    [('hea', False), ('hea', True)]
    >>> t = paired_kd_tests(rows)[0]
    >>> t["n_pairs"], t["mean_diff"], t["wins"]
    (2, 0.375, 2)
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np
from scipy.stats import false_discovery_control, wilcoxon


def group_rows(rows: Sequence[dict], keys: Sequence[str] = ("model", "role", "kd")) -> dict[tuple, list[dict]]:
    """Rows by the values of ``keys`` (``kd`` as a bool), in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(bool(r[k]) if k == "kd" else r[k] for k in keys)].append(r)
    return groups


def mean(rows: Sequence[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def sample_var(values: Any) -> float:
    a = np.asarray(values, dtype=float)
    return float(a.var(ddof=1)) if len(a) > 1 else 0.0


def sample_std(values: Any) -> float:
    a = np.asarray(values, dtype=float)
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0


def run_summary(rows: Sequence[dict]) -> list[dict]:
    """Training runs: mean, variance and std of test macro-F1 per (model, kd), in first-seen order."""
    out = []
    for (model, role, kd), rs in group_rows(rows).items():
        var = sample_var([r["f1_macro"] for r in rs])
        out.append({"model": model if role == "student" else f"{model} (teacher)", "kd": kd,
                    "mean_f1": mean(rs, "f1_macro"), "var_f1": var, "std_f1": math.sqrt(var),
                    "n_params": int(rs[0]["n_params"]), "n_seeds": len(rs),
                    "mean_epochs": mean(rs, "epochs_trained"), "mean_accuracy": mean(rs, "accuracy"),
                    "mean_f1_weighted": mean(rs, "f1_weighted")})
    return out


def backend_summary(rows: Sequence[dict]) -> list[dict]:
    """Evaluations and jobs: mean / std over seeds of exact and backend macro-F1 per (model, kd)."""
    out = []
    for (model, kd), rs in group_rows(rows, ("model", "kd")).items():
        fe = np.array([r["f1_macro_exact"] for r in rs])
        fb = np.array([r["f1_macro_backend"] for r in rs])
        fc = [r["f1_macro_calibrated"] for r in rs if r.get("f1_macro_calibrated") is not None]
        calibrated = len(fc) == len(rs)  # only when every seed of the group was calibrated
        out.append({"model": model, "kd": kd, "seeds": len(rs), "f1_exact_mean": float(fe.mean()),
                    "f1_exact_std": sample_std(fe), "f1_backend_mean": float(fb.mean()),
                    "f1_backend_std": sample_std(fb),
                    "f1_calibrated_mean": float(np.mean(fc)) if calibrated else None,
                    "f1_calibrated_std": sample_std(fc) if calibrated else None,
                    "f1_delta_mean": float((fb - fe).mean()),
                    "accuracy_exact_mean": mean(rs, "accuracy_exact"),
                    "accuracy_backend_mean": mean(rs, "accuracy_backend"),
                    "accuracy_calibrated_mean": mean(rs, "accuracy_calibrated") if calibrated else None})
    return out


def grid_summary(rows: Sequence[dict], config: dict) -> list[dict]:
    """The Hasan grid: test accuracy mean and std per cell (student entry) and KD setting, with the
    cell's qubits / reduction / encoding from the run's config; the teacher first."""
    cells = {st.get("name") or st["model"]: st.get("options", {}) for st in config["students"]}
    out = []
    for (label, role, kd), rs in group_rows(rows).items():
        opts = cells.get(label, {}) if role == "student" else {}
        out.append({"student": label if role == "student" else f"{label} (teacher)",
                    "qubits": opts.get("qubits", ""), "reduction": opts.get("reduction", ""),
                    "encoding": opts.get("encoding", ""), "kd": kd, "mean_accuracy": mean(rs, "accuracy"),
                    "std_accuracy": sample_std([r["accuracy"] for r in rs]),
                    "mean_f1": mean(rs, "f1_macro"), "n_seeds": len(rs), "n_params": int(rs[0]["n_params"]),
                    "mean_epochs": mean(rs, "epochs_trained")})
    return sorted(out, key=lambda s: (s["qubits"] != "", str(s["qubits"]), str(s["reduction"]),
                                      str(s["encoding"]), s["kd"]))


WILCOXON_TEST = ("two-sided Wilcoxon signed-rank test of the paired differences (scipy.stats.wilcoxon, "
                 "zero_method='zsplit': zero differences are ranked and their ranks split half to each sign; "
                 "method='auto': exact null distribution without zeros or ties, else an exact permutation "
                 "test over all 2^n sign flips for n <= 13 pairs, else the normal approximation)")
"""How the report names the paired KD test (the SciPy >= 1.15 rules of ``method='auto'``)."""


def wilcoxon_p_method(diff: Any) -> str:
    """Which p-value ``scipy.stats.wilcoxon(diff, zero_method="zsplit")`` computes (SciPy >= 1.15,
    ``method="auto"``): ``exact`` (no zero and no tied ``|diff|``, n <= 50), ``permutation`` (zeros or
    ties, n <= 13: all ``2^n`` sign flips, so exact too) or ``normal`` (otherwise; tie-corrected
    variance, no continuity correction).

    Example:
        >>> wilcoxon_p_method([0.1, -0.2, 0.3]), wilcoxon_p_method([0.0, 0.1, 0.1]), wilcoxon_p_method(range(1, 60))
        ('exact', 'permutation', 'normal')
    """
    a = np.abs(np.asarray(diff, dtype=float))
    if len(a) > 50:
        return "normal"
    if len(np.unique(a)) == len(a) and not (a == 0).any():
        return "exact"
    return "permutation" if len(a) <= 13 else "normal"


def paired_kd_tests(rows: Sequence[dict]) -> list[dict]:
    """Per student: KD-minus-noKD macro-F1 over the seeds having both, with the test of
    :data:`WILCOXON_TEST` (``p_wilcoxon``, computed as ``p_method``) and, for comparison, the textbook
    variant that drops zero differences first (``p_wilcoxon_drop_zeros``, ``zero_method="wilcox"``).

    The two differ only when some seeds tie (zero difference): zsplit keeps those pairs, which
    adds ranks to both sides equally and pulls the statistic towards "no effect"; dropping them tests
    the remaining pairs alone. Without zero differences they are the same test."""
    by: dict[str, dict] = defaultdict(dict)
    for r in rows:
        if r["role"] == "student":
            by[r["model"]][(bool(r["kd"]), int(r["seed"]))] = float(r["f1_macro"])
    tests = []
    for model, vals in by.items():
        seeds = sorted(s for kd, s in vals if kd and (False, s) in vals)
        if not seeds:
            continue
        diff = np.round([vals[(True, s)] - vals[(False, s)] for s in seeds], 12) + 0.0  # no "-0.0"
        if np.allclose(diff, 0):
            p, p_drop, method, note = 1.0, 1.0, "", "all paired differences are zero"
        elif len(seeds) < 2:
            p, p_drop, method, note = float("nan"), float("nan"), "", "one seed: no test"
        else:
            p, method, note = float(wilcoxon(diff, zero_method="zsplit").pvalue), wilcoxon_p_method(diff), ""
            # = wilcoxon(diff, zero_method="wilcox"), at a fraction of its permutation cost
            p_drop = p if (diff != 0).all() else float(wilcoxon(diff[diff != 0]).pvalue)
        tests.append({"model": model, "n_pairs": len(seeds), "mean_diff": float(diff.mean()),
                      "median_diff": float(np.median(diff)), "std_diff": sample_std(diff),
                      "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()), "p_wilcoxon": p,
                      "p_method": method, "p_wilcoxon_drop_zeros": p_drop, "note": note})
    return tests


def holm(p: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order; NaN stays NaN.

    Written by hand (six lines): SciPy has Benjamini-Hochberg but no Holm, and statsmodels is not a
    dependency.

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.5])
        [0.04, 0.09, 0.09, 0.5]
    """
    p = np.asarray(p, dtype=float)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate(np.minimum((len(ok) - np.arange(len(ok))) * p[order], 1.0))
    out = p.copy()
    out[order] = adj
    return [round(float(v), 12) for v in out]


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg-adjusted p-values (``scipy.stats.false_discovery_control``), NaN kept.

    Example:
        >>> benjamini_hochberg([0.01, float("nan"), 0.04, 0.03])
        [0.03, nan, 0.04, 0.04]
    """
    a = np.asarray(p, dtype=float)
    out = a.copy()
    ok = ~np.isnan(a)
    if ok.any():
        out[ok] = false_discovery_control(a[ok], method="bh")
    return [round(float(v), 12) for v in out]
