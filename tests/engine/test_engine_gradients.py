"""Gradients of the engine against parameter shift on Statevector, qiskit-machine-learning's own
ParamShiftEstimatorGradient, and finite differences (gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_oracles import (
    TOL,
    bind,
    features,
    random_circuit,
    reference_readout,
    shift_jacobian,
    student,
)
from qiskit.circuit import ParameterVector
from qiskit.primitives import StatevectorEstimator
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

from qkd_qiskit.circuits import ARCHITECTURES
from qkd_qiskit.engine import QuantumLayer, compile_circuit, compile_student


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_weight_gradients_match_parameter_shift(name):
    """Jacobian of every readout w.r.t. every weight, one sample."""
    st = student(name)
    rng = np.random.default_rng(2)
    angles = np.asarray(st.input_angles(features()[:1]))[0]
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    w = torch.tensor(weights, requires_grad=True)
    out = compile_student(st)(torch.tensor(angles)[None], w)[0]
    jac = np.stack([torch.autograd.grad(out[k], w, retain_graph=True)[0].numpy() for k in range(len(out))])
    assert np.abs(jac - shift_jacobian(st, angles, weights)).max() < TOL


def test_gradients_match_qiskit_param_shift():
    """Cross-check with qiskit-machine-learning's own ParamShiftEstimatorGradient (HEA)."""
    st = student("hea")
    rng = np.random.default_rng(3)
    angles = np.asarray(st.input_angles(features()[:1]))[0]
    weights = rng.uniform(0, 2 * np.pi, len(st.weight_params))
    bound = bind(st, angles, weights)
    values = [bound[p] for p in st.circuit.parameters]
    grad = ParamShiftEstimatorGradient(StatevectorEstimator())
    obs = st.observables()[2]
    res = grad.run([st.circuit], [obs], [values], parameters=[list(st.weight_params)]).result()
    w = torch.tensor(weights, requires_grad=True)
    out = compile_student(st)(torch.tensor(angles)[None], w)[0, 2]
    ours = torch.autograd.grad(out, w)[0].numpy()
    assert np.abs(ours - res.gradients[0]).max() < TOL


def test_float32_matches_the_references():
    """float32 read-outs and weight gradients against Statevector and parameter shift."""
    st = student("hea")
    x = features()
    layer = QuantumLayer(st, 1, [torch.Generator().manual_seed(0)], dtype=torch.float32)
    assert layer.weights.dtype == torch.float32
    out = layer(torch.tensor(x, dtype=torch.float32)[None])[0]
    grad = torch.autograd.grad(out.sum(), layer.weights)[0][0].double().numpy()
    angles = np.asarray(st.input_angles(x))
    weights = layer.weights[0].detach().double().numpy()
    ref = np.stack([reference_readout(st, a, weights) for a in angles])
    assert np.abs(out.detach().double().numpy() - ref).max() < 1e-5
    ref_grad = sum(shift_jacobian(st, a, weights).sum(0) for a in angles)
    assert np.abs(grad - ref_grad).max() < 1e-4


def test_gradcheck_inputs_and_weights():
    """Autograd against finite differences, w.r.t. inputs and weights of a random circuit."""
    rng = np.random.default_rng(3)
    xs, ws = ParameterVector("x", 3), ParameterVector("w", 4)
    qc = random_circuit(rng, 4, xs, ws, depth=16)
    prog = compile_circuit(qc, list(xs), list(ws), cache=False)
    a = torch.tensor(rng.uniform(-3, 3, (2, 2, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, (2, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: prog(a, w), (a, w), atol=1e-7)
