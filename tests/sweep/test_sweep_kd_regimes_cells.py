"""The KD-regimes table: per-cell statistics, the paired Wilcoxon test and Holm / BH corrections,
checked against numpy, scipy.stats.wilcoxon and a hand Holm computation."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control, wilcoxon

from qkd_qiskit.kd_regimes import kd_cells
from qkd_qiskit.summaries import holm


def _rows(rng):
    rows = []
    for student in ("linear", "hea"):
        for n in (25, 100):
            for t in (1.0, 4.0):
                base = rng.uniform(0.3, 0.9, 8)
                gain = rng.normal(0.1 if student == "linear" else 0.0, 0.05, 8)
                for seed in range(8):
                    for kd, f1 in ((False, base[seed]), (True, base[seed] + gain[seed])):
                        rows.append({"model": student, "role": "student", "kd": kd, "seed": seed, "f1_macro": f1,
                                     "data.n_train": n, "kd.temperature": t})
                rows += [{"model": "teacher_mlp", "role": "teacher", "kd": False, "seed": s, "f1_macro": 0.5 + s / 100,
                          "data.n_train": n, "kd.temperature": t} for s in range(8)]
    return rows


def test_cells_match_numpy_scipy_and_hand_holm():
    rows = _rows(np.random.default_rng(0))
    cells = kd_cells(rows, {"data.label_noise": 0.0}, students=["linear", "hea"])
    assert [(c["student"], c["n_train"], c["temperature"]) for c in cells][:3] == \
        [("linear", 25, 1.0), ("linear", 25, 4.0), ("linear", 100, 1.0)]
    for c in cells:
        pick = lambda kd: np.array([r["f1_macro"] for r in rows if r["role"] == "student"  # noqa: E731
                                    and r["model"] == c["student"] and r["kd"] == kd
                                    and r["data.n_train"] == c["n_train"] and r["kd.temperature"] == c["temperature"]])
        off, on = pick(False), pick(True)
        assert c["label_noise"] == 0.0 and c["n_seeds"] == 8
        assert c["mean_f1_kd"] == pytest.approx(on.mean()) and c["std_f1_nokd"] == pytest.approx(off.std(ddof=1))
        assert c["mean_diff"] == pytest.approx((on - off).mean())
        assert c["p_wilcoxon"] == pytest.approx(wilcoxon(on - off).pvalue)  # no ties: the textbook test
        assert c["teacher_f1"] == pytest.approx(np.mean([0.5 + s / 100 for s in range(8)]))
    p = np.array([c["p_wilcoxon"] for c in cells])
    m, order = len(p), np.argsort(p)
    by_hand = np.empty(m)
    running = 0.0
    for k, i in enumerate(order):  # Holm: (m - k) * p_(k), made monotone, capped at 1
        running = max(running, min(1.0, (m - k) * p[i]))
        by_hand[i] = running
    np.testing.assert_allclose([c["p_holm"] for c in cells], by_hand)
    np.testing.assert_allclose([c["p_bh"] for c in cells], false_discovery_control(p))
    assert all(c["p_holm"] >= c["p_bh"] - 1e-12 for c in cells)


def test_holm_keeps_order_and_nan():
    assert holm([0.04, float("nan"), 0.01]) == pytest.approx([0.04, float("nan"), 0.02], nan_ok=True)
