"""The torch layer: independent models, the initial-weight convention, encoded inputs, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from engine_oracles import assert_layer_matches_statevector, features, student
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from qkd_qiskit.engine import QuantumLayer, compile_circuit


def test_models_in_a_batch_are_independent():
    """Each model's read-out is its own circuit's (Statevector), and its gradient touches only it."""
    st = student("universal")
    layer = QuantumLayer(st, 3, [torch.Generator().manual_seed(s) for s in (3, 4, 5)], dtype=torch.float64)
    x = torch.rand(3, 4, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = layer(x)
    grads = torch.autograd.grad(out[1].square().sum(), layer.weights)[0]
    assert grads[0].abs().max() == 0 and grads[2].abs().max() == 0 and grads[1].abs().max() > 0
    assert_layer_matches_statevector(layer, out, x)


def test_initial_weights_follow_the_convention():
    """Model m: ``2 pi * torch.rand(n_w, generator=g_m, float64)``, then cast; no other model's
    generator nor the dtype changes it beyond rounding."""
    st = student("hea")
    n_w = len(st.weight_params)
    layer = QuantumLayer(st, 3, [torch.Generator().manual_seed(s) for s in (3, 4, 5)], dtype=torch.float64)
    expected = torch.rand(n_w, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * (2 * math.pi)
    assert torch.equal(layer.weights[1].detach(), expected)
    other = QuantumLayer(st, 2, [torch.Generator().manual_seed(4), torch.Generator().manual_seed(9)])
    assert other.weights.dtype == torch.float32
    assert torch.equal(other.weights[0].detach(), expected.float())
    torch.manual_seed(12)
    expected = torch.rand(n_w, dtype=torch.float64) * (2 * math.pi)
    torch.manual_seed(12)
    assert torch.equal(QuantumLayer(st, 1, dtype=torch.float64).weights[0].detach(), expected)
    with pytest.raises(ValueError, match="generators"):
        QuantumLayer(st, 2, [torch.Generator()])


def test_encoded_inputs_match_raw_features():
    st = student("q3")
    x = features()
    layer = QuantumLayer(st, 2, [torch.Generator().manual_seed(s) for s in (0, 1)], dtype=torch.float64)
    xs = torch.tensor(np.stack([x, x[::-1].copy()]))
    enc = layer.encode(xs)
    assert enc.shape == (2, 3, 64)
    psi = enc / enc.norm(dim=-1, keepdim=True)
    assert torch.allclose(psi, xs / xs.norm(dim=-1, keepdim=True), atol=1e-12)  # amplitude embedding
    out = layer(encoded=enc)
    assert torch.allclose(out, layer(xs), atol=1e-12)
    assert_layer_matches_statevector(layer, out, xs)


def test_non_encodable_circuits_refuse_encode():
    """Inputs used after a weight stage: the prepared state would depend on the weights."""
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(2)
    qc.ry(x, 0)
    qc.rx(w, 0)
    assert compile_circuit(qc, [x], [w], cache=False).encodable
    qc.ry(x, 1)
    qc.cx(0, 1)
    qc.ry(x, 1)
    prog = compile_circuit(qc, [x], [w], cache=False)
    assert not prog.encodable
    with pytest.raises(ValueError, match="encode"):
        prog.encode(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="not encodable"):
        prog.forward_encoded(torch.zeros(3, 4), torch.zeros(1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    st = student("universal")
    x = features()
    layer = QuantumLayer(st, 2, [torch.Generator().manual_seed(s) for s in (0, 1)], dtype=torch.float64)
    xs = torch.tensor(np.stack([x, x]))
    cpu = layer(xs)
    gpu = layer.to("cuda")(xs.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-10)
