"""Hybrid students as Qiskit QNNs (TorchConnector) on the backend profiles."""

import pytest
import torch

from qkd_qiskit.backends import get_backend
from qkd_qiskit.distill import distillation_loss
from qkd_qiskit.models import (
    HybridStudent,
    QNNStudent,
    build_model,
    count_params,
    load_model_states,
    model_state,
)
from qkd_qiskit.qnn import ReadoutInterpret, build_qnn


def gens(n=2, offset=0):
    return [torch.Generator().manual_seed(offset + s) for s in range(n)]


def features(m=2, b=6, f=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (m, b, f), generator=g).double() + 0.05


@pytest.mark.parametrize("name", ["hea", "q2"])
def test_qnn_forward_and_gradient_equal_engine(name):
    """Same generators -> same initial weights; forward and weight gradients match the engine."""
    engine = build_model(name, 8, 3, gens(), torch.float64, layers=2)
    qnn = build_model(name, 8, 3, gens(), torch.float64, layers=2, backend="statevector")
    assert isinstance(engine, HybridStudent) and isinstance(qnn, QNNStudent)
    assert list(engine.state_dict()) == list(qnn.state_dict()) and count_params(qnn) == count_params(engine)
    x = features()
    out_e, out_q = engine(x), qnn(x)
    assert out_q.shape == (2, 6, 3)
    assert torch.allclose(out_e, out_q, atol=1e-6)
    out_e.logsumexp(-1).sum().backward()
    out_q.logsumexp(-1).sum().backward()
    assert torch.allclose(engine.quantum.weights.grad, qnn.quantum.weights.grad, atol=1e-5)


def test_sampler_qnn_reads_only_kept_qubits():
    interp = ReadoutInterpret((4, 5))
    assert [interp(v) for v in (0b000000, 0b010000, 0b100000, 0b110000, 0b001111)] == [0, 1, 2, 3, 0]
    st = build_model("q2", 8, 3, gens(1), layers=2, backend="statevector").student
    qnn = build_qnn(st, get_backend("statevector"))
    assert qnn.output_shape == (4,) and qnn.num_weights == len(st.weight_params)


def test_hybrid_student_trains_through_torch_connector_with_kd():
    torch.manual_seed(0)
    net = build_model("q2", 8, 3, gens(1), torch.float64, layers=2, backend="statevector")
    x = features(1, 16)
    y = (x[0, :, 0] > 0.5).long() + (x[0, :, 1] > 0.5).long()
    teacher = torch.nn.functional.one_hot(y, 3).double()[None] * 4
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    losses = []
    for _ in range(12):
        loss = distillation_loss(net(x), y[None], teacher).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.05


def test_checkpoint_round_trip_between_engine_and_qnn():
    engine = build_model("hea", 8, 3, gens(2, 5), torch.float64, layers=1)
    states = [model_state(engine, m) for m in range(2)]
    qnn = load_model_states(build_model("hea", 8, 3, gens(2), torch.float64, layers=1, backend="statevector"), states)
    assert torch.allclose(qnn(features()), engine(features()), atol=1e-6)


@pytest.mark.parametrize("profile", ["aer-fake-sherbrooke", "ibm-local-fake-sherbrooke"])
def test_engine_checkpoint_evaluates_on_noisy_backends(profile):
    engine = build_model("q2", 8, 3, gens(1), torch.float64, layers=1)
    qnn = QNNStudent.from_hybrid(engine, profile)
    x = features(1, 4)
    with torch.no_grad():
        exact, noisy = engine.quantum(x), qnn.quantum(x)
    diff = (exact - noisy).abs().mean()
    assert torch.isfinite(noisy).all() and 0 < diff < 0.2
    assert torch.allclose(noisy.sum(-1), torch.ones(1, 4, dtype=noisy.dtype), atol=1e-6)


def test_small_noisy_training_step_with_spsa():
    """Training on an Aer noise model works (slowly): one SPSA step moves the circuit weights."""
    net = build_model("q2", 8, 3, gens(1), torch.float64, layers=1, backend="aer-fake-torino", gradient="spsa")
    before = net.quantum.weights.detach().clone()
    x = features(1, 4)
    y = torch.tensor([[0, 1, 2, 0]])
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    loss = distillation_loss(net(x), y).sum()
    loss.backward()
    assert torch.isfinite(net.quantum.weights.grad).all() and net.quantum.weights.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(before, net.quantum.weights.detach())


def test_bad_qnn_options_name_the_field():
    with pytest.raises(ValueError, match="options.gradient: must be auto, param_shift or spsa"):
        build_model("q2", 8, 3, gens(1), layers=1, backend="statevector", gradient="adjoint")
    with pytest.raises(ValueError, match="options.backend: backend: no profile 'nowhere'"):
        build_model("q2", 8, 3, gens(1), layers=1, backend="nowhere")
