"""The execution paths of ``aer`` (density-matrix fast path, plain sampler) against independent oracles:
Aer itself (noiseless and noisy), the engine's exact read-outs, and a Kronecker-product read-out model."""

from functools import reduce

import numpy as np
import pytest
from qiskit_aer.noise import NoiseModel

from qkd_qiskit.backends import (
    Compacted,
    apply_readout_errors,
    get_backend,
    load_profile,
    probs_to_readouts,
    sample_probs,
)
from qkd_qiskit.circuits import build_student


def test_readout_errors_match_the_kronecker_assignment_matrix():
    """Oracle: the full 2^k x 2^k assignment matrix, bit j of the outcome index <-> matrix j
    (little-endian: qubit 0 is the rightmost Kronecker factor)."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), size=5)
    mats = []
    for _ in range(3):
        m = rng.uniform(0.05, 1, (2, 2))
        mats.append(m / m.sum(0))  # columns: true state, rows: measured
    full = reduce(np.kron, mats[::-1])
    out = apply_readout_errors(probs, mats)
    assert np.allclose(out, probs @ full.T, atol=1e-14) and np.allclose(out.sum(1), 1)
    flip0 = np.array([[0.0, 1.0], [1.0, 0.0]])  # bit 0 always read flipped
    assert np.array_equal(apply_readout_errors(np.array([[0.5, 0.25, 0.25, 0.0]]), [flip0, np.eye(2)]),
                          [[0.25, 0.5, 0.0, 0.25]])


def test_sample_probs_is_a_seeded_multinomial():
    probs = np.array([[0.2, 0.8], [1.0, 0.0]])
    a, b = sample_probs(probs, 1000, seed=4), sample_probs(probs, 1000, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, sample_probs(probs, 1000, seed=5))
    assert np.array_equal(a[1], [1.0, 0.0]) and abs(a[0, 1] - 0.8) < 0.05
    assert np.array_equal(a, np.random.default_rng(4).multinomial(1000, probs) / 1000)


@pytest.mark.parametrize("name", ["q2", "hea"])
def test_noiseless_paths_match_engine_exactly(name, small_batch):
    """Bit ordering, layout and read-out mapping of the ISA paths agree with the engine."""
    st = build_student(name, n_qubits=4, layers=2)
    w, a = small_batch(st)
    exact = get_backend("statevector").readouts(st, w, a)
    t = get_backend("aer-fake-torino").transpiled(st)
    dm = Compacted.build(t, NoiseModel())
    assert dm.fast_path_ok and len(dm.physical) >= st.n_qubits
    assert np.allclose(probs_to_readouts(st, dm.probabilities(st, w, a)), exact, atol=1e-9)


def test_fast_path_matches_aer_sampler_within_shot_noise(small_batch):
    st = build_student("q2", n_qubits=4, layers=2)
    w, a = small_batch(st, n=20)
    be = get_backend(load_profile("aer-fake-sherbrooke").model_copy(update={"shots": 4000}))
    exact_probs = be.compacted(st).probabilities(st, w, a)
    sampled = be.sampler_probs(st, w, a, seed=3)
    z = (sampled - exact_probs) / np.sqrt(exact_probs * (1 - exact_probs) / 4000 + 1e-12)
    assert 0.5 < float((z**2).mean()) < 1.6 and np.abs(z).max() < 5


def test_mid_circuit_measurements_and_classical_readout_keep_the_fast_path():
    st = build_student("q3", n_qubits=5, layers=3)
    cmp = get_backend("aer-fake-torino").compacted(st)
    assert st.circuit.count_ops()["measure"] == 2 and cmp.fast_path_ok
    assert sorted(cmp.readout_positions(st)) == sorted(set(cmp.readout_positions(st)))


@pytest.mark.parametrize("profile", ["aer-fake-sherbrooke", "aer-fake-torino"])
def test_noisy_readouts_differ_from_exact_within_bounds(profile, small_batch):
    st = build_student("hea", n_qubits=3, layers=2)
    w, a = small_batch(st)
    exact = get_backend("statevector").readouts(st, w, a)
    be = get_backend(profile)
    noisy = be.readouts(st, w, a)
    err = np.abs(noisy - exact).mean()
    assert np.isfinite(noisy).all() and 0 < err < 0.3
    assert np.array_equal(noisy, be.readouts(st, w, a, seed=be.profile.seed))  # seeded
    assert not np.array_equal(noisy, be.readouts(st, w, a, seed=be.profile.seed + 1))


def test_plain_sampler_path_agrees_with_the_exact_noisy_distribution(small_batch):
    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=3)
    be = get_backend(load_profile("aer-fake-torino").model_copy(update={"fast_eval": False, "shots": 2000}))
    out = be.readouts(st, w, a, seed=1)
    assert out.shape == (3, 4) and np.allclose(out.sum(1), 1)
    exact = be.compacted(st).probabilities(st, w, a)
    assert np.abs(out - exact).max() < 5 * np.sqrt(0.25 / 2000)
