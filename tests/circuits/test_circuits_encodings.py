"""Angle and dense-angle encodings against Qiskit Statevector."""


import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qkd_qiskit.circuits import (
    angle_embedding,
    build_student,
    dense_angle_embedding,
    encoding_capacity,
)
from qkd_qiskit.engine import QuantumLayer


def _gens(n):
    return [torch.Generator().manual_seed(i) for i in range(n)]


# ---------------------------------------------------------------------------------------- loaders



def test_angle_encodings_prepare_the_expected_product_states():
    theta = np.array([0.3, 1.1, 2.0])
    psi = Statevector(angle_embedding(3).assign_parameters(theta)).data
    single = [np.array([np.cos(t / 2), np.sin(t / 2)]) for t in theta]
    expected = np.kron(single[2], np.kron(single[1], single[0]))  # little endian
    assert np.allclose(psi, expected)
    vals = np.array([0.3, 0.7, 1.1, -0.4])
    psi = Statevector(dense_angle_embedding(2).assign_parameters(vals)).data
    qs = [np.array([np.cos(a / 2) * np.exp(-1j * b / 2), np.sin(a / 2) * np.exp(1j * b / 2)])
          for a, b in (vals[:2], vals[2:])]
    assert np.allclose(psi, np.kron(qs[1], qs[0]))


@pytest.mark.parametrize("encoding", ["amplitude", "angle", "dense_angle"])
def test_engine_matches_statevector_for_every_encoding(encoding):
    st = build_student("rot_layers", 4, 2, encoding=encoding)
    assert len(st.weight_params) == 24 and st.n_features == encoding_capacity(encoding, 4)
    layer = QuantumLayer(st, 1, generators=_gens(1), dtype=torch.float64)
    assert layer.program.encodable == (encoding != "dense_angle")
    x = np.random.default_rng(1).random((3, st.n_features))
    out = layer(torch.as_tensor(x[None])).detach().numpy()[0]
    angles, w = st.input_angles(x), layer.weights.detach().numpy()[0]
    for i in range(3):
        bound = st.circuit.assign_parameters({**dict(zip(st.input_params, angles[i])),
                                              **dict(zip(st.weight_params, w))})
        sv = Statevector(bound)
        assert np.allclose(out[i], [sv.expectation_value(o).real for o in st.observables()], atol=1e-10)


# ---------------------------------------------------------------------------------- the study
