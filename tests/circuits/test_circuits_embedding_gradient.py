"""The amplitude embedding's gradient w.r.t. raw features, through the angles and the engine, against
finite differences of the state it prepares, ``x / ||x||`` (see ``amplitude_angles``' docstring)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qkd_qiskit.circuits import amplitude_angles, amplitude_embedding
from qkd_qiskit.engine import compile_circuit

N = 3


def _state(x: torch.Tensor) -> torch.Tensor:
    emb = amplitude_embedding(N)
    prog = compile_circuit(emb, list(emb.parameters), [])
    return prog.encode(amplitude_angles(x[None], N))[0]


def _autograd_jacobian(x: np.ndarray) -> np.ndarray:
    return torch.autograd.functional.jacobian(_state, torch.tensor(x, dtype=torch.float64)).numpy()


def _target(x: np.ndarray) -> np.ndarray:
    padded = np.zeros(2**N)
    padded[: len(x)] = x
    return padded / np.linalg.norm(padded)


def _fd_jacobian(x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    cols = []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        cols.append((_target(x + e) - _target(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


SMOOTH = {
    "generic": [0.3, -1.2, 0.5, 2.0, -0.7, 0.1, 0.9, -0.4],
    "zeros, no zero pair": [0.3, 0.0, 0.5, 2.0, 0.0, 0.1, 0.9, 0.0],
    "leaf branch cut (x[2m+1] = 0 > x[2m])": [-0.3, 0.0, 0.5, 2.0, -0.7, 0.0, 0.9, 0.4],
    "padded (5 of 8 features)": [0.3, 1.0, 0.5, 0.2, 0.7],
    "padded, binary-like": [1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_state_gradient_matches_finite_differences_where_the_angle_map_is_smooth(name):
    x = np.array(SMOOTH[name])
    assert np.abs(_state(torch.tensor(x, dtype=torch.float64)).detach().numpy() - _target(x)).max() < 1e-12
    assert np.abs(_autograd_jacobian(x) - _fd_jacobian(x)).max() < 1e-7


def test_random_points_are_smooth_and_match():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=2**N)
        assert np.abs(_autograd_jacobian(x) - _fd_jacobian(x)).max() < 1e-7


@pytest.mark.parametrize("x, zero_features", [
    ([0.3, 1.0, 0.0, 0.0, 0.7, 0.1, 0.9, 0.4], [2, 3]),            # one zero pair
    ([0.0, 0.0, 0.0, 0.0, 0.7, 0.1, 0.9, 0.4], [0, 1, 2, 3]),      # a zero half (its norm: parent angle)
    ([0.3, 1.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.4], [2, 3, 4, 5]),      # zero pairs in two blocks
])
def test_documented_non_differentiable_points(x, zero_features):
    """Where an aligned pair is (0, 0) the angle map is not differentiable: the features of the zero
    pair get gradient 0 (the documented convention), while the state's derivative there is
    ``e_i / ||x||``; every other feature's column is still exact."""
    x = np.array(x)
    auto, fd = _autograd_jacobian(x), _fd_jacobian(x)
    other = [i for i in range(len(x)) if i not in zero_features]
    assert np.abs(auto[:, other] - fd[:, other]).max() < 1e-7
    assert np.abs(auto[:, zero_features]).max() == 0.0
    expected = np.eye(2**N)[:, zero_features] / np.linalg.norm(x)
    assert np.abs(fd[:, zero_features] - expected).max() < 1e-6
