"""One evaluation batch: input checks, parameter bindings, sampler bits -> read-out distributions."""

import numpy as np
import pytest
from qiskit.primitives import BitArray

from qkd_qiskit.backends import (
    bindings,
    bits_to_probs,
    check_batch,
    get_backend,
    probs_to_readouts,
)
from qkd_qiskit.circuits import build_student


def test_bindings_and_bits_helpers(small_batch):
    from qiskit_aer.primitives import SamplerV2

    st = build_student("q2", n_qubits=3, layers=1)
    w, a = small_batch(st, n=2)
    qc = st.measured_circuit().decompose(gates_to_decompose=["mux_ry"])
    b = bindings(qc, st, w, a)
    (params, values), = b.items()
    assert values.shape == (2, len(params)) == (2, qc.num_parameters)
    res = SamplerV2(default_shots=20000, seed=1).run([(qc, b)]).result()
    probs = bits_to_probs(st, res[0].data.meas)
    assert np.allclose(probs, get_backend("statevector").readouts(st, w, a), atol=0.02)


def test_bits_to_probs_follows_qiskits_counts():
    """Oracle: ``BitArray.slice_bits(...).get_int_counts()`` per input row."""
    st = build_student("q2", n_qubits=4, layers=2)  # read-out qubits (2, 3)
    rng = np.random.default_rng(1)
    bits = BitArray.from_bool_array(rng.random((3, 50, 4)) < 0.4, order="little")
    probs = bits_to_probs(st, bits)
    for i in range(3):
        counts = bits[i].slice_bits(list(st.readout_qubits)).get_int_counts()
        assert np.array_equal(probs[i], [counts.get(o, 0) / 50 for o in range(4)])


def test_probs_to_readouts_z_signs():
    st = build_student("hea", n_qubits=2, layers=1)  # <Z_0>, <Z_1>
    probs = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0, 1.0]])
    assert np.array_equal(probs_to_readouts(st, probs), [[1, 1], [-1, 1], [0, 0], [-1, -1]])
    q2 = build_student("q2", n_qubits=3, layers=1)
    assert probs_to_readouts(q2, probs) is probs


@pytest.mark.parametrize("case, message", [
    ("short weights", r"weights: expected shape \(\d+,\), got \(3,\)"),
    ("no rows", r"angles: expected shape \(N>0, 15\), got \(0, 15\)"),
    ("one input short", r"angles: expected shape \(N>0, 15\), got \(2, 14\)"),
    ("nan", "weights/angles: non-finite values"),
])
def test_check_batch_rejects_bad_input(case, message):
    st = build_student("hea", n_qubits=4, layers=1)  # 15 input angles
    w, a = np.zeros(len(st.weight_params)), np.zeros((2, 15))
    w, a = {"short weights": (np.zeros(3), a), "no rows": (w, a[:0]), "one input short": (w, a[:, :14]),
            "nan": (w, np.full_like(a, np.nan))}[case]
    with pytest.raises(ValueError, match=message):
        check_batch(st, w, a)
    assert check_batch(st, np.zeros(len(st.weight_params)), np.zeros((2, 15)))[1].dtype == np.float64
