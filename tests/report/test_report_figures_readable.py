"""The report figures stay a sane size with labels that do not overlap, also for the 24-cell Hasan grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from qkd_qiskit.report import figure, figure_object, hasan_figure, hasan_figure_object

RNG = np.random.default_rng(0)
HASAN_CELLS = [(q, r, e) for q in (4, 8) for r in ("fc", "crop", "pca", "pool") for e in ("amplitude", "angle",
                                                                                           "dense_angle")]


def _run_summary(models):
    rows = [{"model": "lenet5 (teacher)", "kd": False, "mean_f1": 0.97, "std_f1": 0.01, "var_f1": 1e-4,
             "n_params": 19754}]
    for m in models:
        for kd in (False, True):
            std = float(RNG.uniform(0, 0.04))
            rows.append({"model": m, "kd": kd, "mean_f1": float(RNG.uniform(0.45, 1.0)), "std_f1": std,
                         "var_f1": std**2, "n_params": 73})
    return rows


def _hasan_summary():
    rows = [{"student": "lenet5 (teacher)", "qubits": "", "reduction": "", "encoding": "", "kd": False,
             "mean_accuracy": 0.969, "std_accuracy": 0.01}]
    for q, r, e in HASAN_CELLS:
        for kd in (False, True):
            rows.append({"student": f"q{q}_{r}_{e}", "qubits": q, "reduction": r, "encoding": e, "kd": kd,
                         "mean_accuracy": float(RNG.uniform(0.45, 0.97)), "std_accuracy": 0.02})
    return rows


def _boxes(fig, texts):
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_text()]


def _overlapping(boxes) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


@pytest.mark.parametrize("models", [
    ["linear", "hea", "universal", "universal_h", "q2", "q3", "q4", "q5"],           # Piperno: vertical bars
    [f"q{q}_{r}_{e}" for q, r, e in HASAN_CELLS],                                      # Hasan run: one row each
])
def test_figure1_is_readable(models):
    summary = _run_summary(models)
    fig = figure_object(summary, "title")
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = ax.get_yticklabels() if len(models) > 10 else ax.get_xticklabels()
    assert len([t for t in labels if t.get_text()]) == len(models)
    assert not _overlapping(_boxes(fig, labels))
    width, height = _size(figure(summary, "title"))
    assert width <= 2000 and height <= 2000, (width, height)


def test_figure1_of_the_hasan_grid_is_no_longer_4316_px_wide():
    width, _ = _size(figure(_run_summary([f"q{q}_{r}_{e}" for q, r, e in HASAN_CELLS]), "hasan2023_digits"))
    assert width < 1500


def test_hasan_figure_legend_clear_of_the_panels():
    summary = _hasan_summary()
    fig = hasan_figure_object(summary, "title")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    assert not any(legend.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    for ax in fig.axes:
        assert not _overlapping(_boxes(fig, ax.get_xticklabels()))
    width, height = _size(hasan_figure(summary, "title"))
    assert width <= 2000 and height <= 1000
