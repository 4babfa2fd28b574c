"""The PTM path of noisy evaluation (qkd_qiskit.noisy.sampled) against Aer's density-matrix simulation
of the same compact ISA circuit and noise model (Compacted.probabilities, the Aer path of evaluate)."""

import numpy as np
import pytest

from qkd_qiskit.backends import AerProfile, get_backend
from qkd_qiskit.circuits import build_student
from qkd_qiskit.noisy import PtmSampler, barrier_student, sampled_readouts


@pytest.fixture(scope="module")
def manila():
    return get_backend(AerProfile(kind="aer", device="fake_manila", name="manila", shots=256, seed=3))


CASES = [("hea", False, 3, 2), ("hea", True, 3, 2), ("q2", False, 3, 1), ("universal_h", True, 3, 1)]


@pytest.mark.parametrize("model,barrier,qubits,layers", CASES)
def test_ptm_probabilities_match_aer_density_matrix(manila, model, barrier, qubits, layers):
    """``barrier``: the split way (input part once, Heisenberg weight part); else the whole circuit per sample."""
    st = build_student(model, n_qubits=qubits, layers=layers, n_features=2**qubits)
    st = barrier_student(st) if barrier else st
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, len(st.weight_params))
    angles = st.input_angles(rng.normal(0, 1, (5, 2**qubits)))
    sampler = PtmSampler(st, manila, whole=not barrier)
    assert sampler.mode == ("split" if barrier else "whole")
    ptm = sampler.probabilities(w, angles)
    aer = manila.compacted(st).probabilities(st, w, angles)
    np.testing.assert_allclose(ptm, aer, atol=1e-6)
    assert np.allclose(ptm.sum(1), 1.0) and ptm.shape == (5, 2 ** len(st.readout_qubits))
    # the same seeded shots as the Aer path of evaluate / calibrate
    np.testing.assert_allclose(sampled_readouts(manila, st, w, angles, seed=11),
                               manila.readouts(st, w, angles, seed=11), atol=1e-12)


def test_plain_sampler_profiles_keep_the_aer_path(manila):
    slow = get_backend(AerProfile(kind="aer", device="fake_manila", name="m2", shots=64, fast_eval=False))
    st = build_student("hea", n_qubits=2, layers=1, n_features=4)
    w, a = np.zeros(len(st.weight_params)), st.input_angles(np.eye(4)[:2])
    np.testing.assert_array_equal(sampled_readouts(slow, st, w, a, seed=5), slow.readouts(st, w, a, seed=5))
