"""The noise study of a run: every quantum student on several device profiles and shot counts, raw
and calibrated, in one table and one figure (``qkd noise RUN_DIR``).

For each (profile, shots, mitigation) the profile is copied with that shot count and read-out
mitigation (named ``<profile>-<shots>``, or ``<profile>-<shots>-mthree`` with mthree), the heads are
calibrated (:mod:`qkd_qiskit.calibrate`, training and validation splits only) and
the students are evaluated on the test split (:mod:`qkd_qiskit.evaluate`). Both steps resume, so
an interrupted study continues where it stopped. Output in ``RUN_DIR/noise/``: one evaluation
folder per (profile, shots, mitigation), ``noise_study.csv`` (mean and std over seeds of exact,
raw-noisy and calibrated-noisy macro-F1 per student, KD setting, profile, shots and mitigation),
``noise_study.md`` and ``noise_study.png``.

Cost: the exact noisy probabilities of a circuit do not depend on the shot count or the mitigation,
and the Aer fast path memoises them per process (:class:`qkd_qiskit.backends.Compacted`), so
each (student, sample) is simulated once per device, whatever the number of shot counts and
mitigations studied.

Example:
    >>> rows = noise_study("runs/piperno2024", ["aer-fake-kingston"], [1024])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .atomic import atomic_write_bytes, atomic_write_csv, atomic_write_text
from .backends import load_profile
from .calibrate import calibrate_run
from .evaluate import evaluate_run
from .figures import png_bytes, pyplot
from .summaries import backend_summary

DEFAULT_PROFILES = ("aer-fake-kingston", "aer-fake-sherbrooke")
DEFAULT_SHOTS = (1024, 8192)
DEFAULT_MITIGATIONS = ("none",)
COLUMNS = ["profile", "device", "shots", "mitigation", "model", "kd", "seeds", "f1_exact_mean", "f1_backend_mean",
           "f1_backend_std", "f1_calibrated_mean", "f1_calibrated_std"]


def noise_study(run_dir: str | Path, profiles: Sequence[str] = DEFAULT_PROFILES,
                shots: Sequence[int] = DEFAULT_SHOTS, samples: int = 300, val_samples: int = 150,
                mitigations: Sequence[str] = DEFAULT_MITIGATIONS,
                students: Sequence[str] | None = None, max_samples: int | None = None, progress: bool = True,
                log: Callable[[str], None] = print) -> list[dict]:
    """Calibrate and evaluate every quantum student of ``run_dir`` on each profile x shots x
    mitigation; write the table, markdown and figure into ``RUN_DIR/noise``; return the table rows."""
    run = Path(run_dir)
    out = run / "noise"
    specs = []
    for name in profiles:  # every profile is checked before any circuit runs
        base = load_profile(name)
        if base.kind != "aer":
            raise ValueError(f"--backends: {name} is a {base.kind} profile; the noise study runs aer profiles")
        for m in mitigations:
            if m not in ("none", "mthree"):
                raise ValueError(f"--mitigation: must be none or mthree, got {m!r}")
        specs += [base.model_copy(update={"shots": s, "mitigation": m,
                                          "name": f"{base.name}-{s}" + ("" if m == "none" else f"-{m}")})
                  for s in shots for m in mitigations]
    table = []
    for profile in specs:
        log(f"{profile.name}: calibrating heads ({samples} + {val_samples} circuits per unit)")
        calibrate_run(run, profile, samples, val_samples, students=students, progress=progress)
        log(f"{profile.name}: evaluating on the test split")
        rows = evaluate_run(run, profile, out / profile.name, progress=progress, students=students,
                            max_samples=max_samples)
        for s in backend_summary(rows):
            table.append({"profile": profile.name.split(f"-{profile.shots}")[0], "device": profile.device,
                          "shots": profile.shots, "mitigation": profile.mitigation,
                          **{k: s[k] for k in COLUMNS if k in s}})
    atomic_write_csv(out / "noise_study.csv", table, COLUMNS)
    atomic_write_text(out / "noise_study.md", markdown(table))
    atomic_write_bytes(out / "noise_study.png", figure(table))
    return table


def _cell(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.3f} ± {std:.3f}"


def markdown(table: Sequence[dict]) -> str:
    """One row per student, KD setting, profile and shots: exact, raw noisy and calibrated noisy F1."""
    lines = ["# Noise study", "", "Test macro-F1, mean ± std over seeds. *raw*: the trained head on noisy "
             "read-outs; *calibrated*: the head refitted on noisy read-outs of training samples "
             "(`qkd calibrate`).", "",
             "| profile | shots | mitigation | student | kd | seeds | exact | raw noisy | calibrated noisy |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['profile']} | {r['shots']} | {r['mitigation']} | {r['model']} | {r['kd']} | {r['seeds']} | "
              f"{r['f1_exact_mean']:.3f} | {_cell(r['f1_backend_mean'], r['f1_backend_std'])} | "
              f"{_cell(r['f1_calibrated_mean'], r['f1_calibrated_std'])} |" for r in table]
    return "\n".join(lines) + "\n"


def figure(table: Sequence[dict]) -> bytes:
    """One panel per (profile, shots, mitigation): exact, raw and calibrated macro-F1 per student."""
    plt = pyplot()

    panels = list(dict.fromkeys((r["profile"], r["shots"], r["mitigation"]) for r in table))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.6), squeeze=False,
                             sharey=True)
    for ax, (profile, shots, mitigation) in zip(axes[0], panels):
        rows = [r for r in table if (r["profile"], r["shots"], r["mitigation"]) == (profile, shots, mitigation)]
        labels = [f"{r['model']}{' KD' if r['kd'] else ''}" for r in rows]
        x = range(len(rows))
        for k, (key, name) in enumerate((("f1_exact_mean", "exact"), ("f1_backend_mean", "raw noisy"),
                                         ("f1_calibrated_mean", "calibrated"))):
            ax.bar([i + (k - 1) * 0.27 for i in x], [r[key] or 0.0 for r in rows], width=0.27, label=name)
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{profile}, {shots} shots" + ("" if mitigation == "none" else f", {mitigation}"), fontsize=9)
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("test macro-F1")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return png_bytes(fig)
