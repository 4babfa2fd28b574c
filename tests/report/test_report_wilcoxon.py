"""The paired KD test is named exactly: scipy's Wilcoxon signed-rank test, zsplit zeros, and the
p-value method scipy's ``method="auto"`` picks; compared with the textbook variant that drops zeros."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import PermutationMethod, wilcoxon

from qkd_qiskit.report import markdown
from qkd_qiskit.summaries import WILCOXON_TEST, paired_kd_tests, wilcoxon_p_method

EXPLICIT = {"exact": "exact", "permutation": PermutationMethod(), "normal": "asymptotic"}


def _rows(diffs, base=0.9):
    rows = []
    for s, d in enumerate(diffs):
        rows.append({"model": "q2", "role": "student", "kd": False, "seed": s, "f1_macro": base})
        rows.append({"model": "q2", "role": "student", "kd": True, "seed": s, "f1_macro": base + d})
    return rows


CASES = {
    "12 seeds, no zeros or ties": [0.01, -0.02, 0.03, 0.015, -0.005, 0.04, 0.025, -0.012, 0.007, 0.033, 0.021, -0.001],
    "12 seeds with zero differences (as in the Piperno run)": [0, 0, 0, 0, 0.0125, -0.0083, 0.0042, -0.0083, 0, 0.0167,
                                                               -0.0042, 0],
    "12 seeds, ties, no zeros": [0.01, 0.01, -0.01, 0.02, 0.02, 0.03, -0.02, 0.01, 0.04, 0.05, 0.06, -0.03],
    "20 seeds with zeros": [0, 0, 0.01, -0.02, 0.03, 0.01, 0.0, 0.02, -0.01, 0.04, 0.05, 0.0, 0.03, 0.02, 0.01,
                            -0.03, 0.06, 0.07, 0.0, 0.02],
}


@pytest.mark.parametrize("name", list(CASES))
def test_p_method_names_what_scipy_auto_computes(name):
    diff = np.round(np.array(CASES[name]), 12) + 0.0
    (t,) = paired_kd_tests(_rows(diff))
    auto = wilcoxon(diff, zero_method="zsplit").pvalue
    assert t["p_wilcoxon"] == pytest.approx(auto, abs=1e-12)
    explicit = wilcoxon(diff, zero_method="zsplit", method=EXPLICIT[t["p_method"]]).pvalue
    assert explicit == pytest.approx(auto, abs=1e-12), t["p_method"]
    # the textbook variant: zeros dropped first, the remaining pairs tested alone
    assert t["p_wilcoxon_drop_zeros"] == pytest.approx(wilcoxon(diff[diff != 0]).pvalue, abs=1e-12)
    assert t["p_wilcoxon_drop_zeros"] == pytest.approx(wilcoxon(diff, zero_method="wilcox").pvalue, abs=1e-12)
    if not (diff == 0).any():
        assert t["p_wilcoxon_drop_zeros"] == pytest.approx(t["p_wilcoxon"], abs=1e-12)


def test_for_twelve_seeds_with_zeros_scipy_enumerates_all_sign_flips():
    diff = np.array(CASES["12 seeds with zero differences (as in the Piperno run)"])
    assert wilcoxon_p_method(diff) == "permutation" and len(diff) <= 13
    assert wilcoxon_p_method(CASES["12 seeds, no zeros or ties"]) == "exact"
    assert wilcoxon_p_method(CASES["20 seeds with zeros"]) == "normal"
    # zsplit keeps the 5 tied seeds (ranks split between signs), so it is more conservative here
    (t,) = paired_kd_tests(_rows(diff))
    assert t["p_wilcoxon"] > t["p_wilcoxon_drop_zeros"]


def test_the_report_names_the_test_and_its_variant():
    rows = _rows(CASES["12 seeds with zero differences (as in the Piperno run)"])
    md = markdown([], paired_kd_tests(rows), [])
    assert WILCOXON_TEST in md and "zsplit" in md and "permutation" in md and "p method" in md
    assert "p_wilcoxon_drop_zeros" in md
