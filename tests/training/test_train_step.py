"""The fused training step (qkd_qiskit.train_step) against torch: the same steps run by autograd
through the eager engine (itself checked against Qiskit ``Statevector`` in tests/engine),
``distillation_loss`` and ``torch.optim.Adam`` must give the same losses and the same parameters
(idle weights aside: their true gradient is zero, so Adam turns rounding noise into steps)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qkd_qiskit.circuits import build_student, idle_weights
from qkd_qiskit.distill import KDWeights, TrainSettings, distillation_loss, teacher_log_probs, train_ensemble
from qkd_qiskit.engine import fused, unfused
from qkd_qiskit.models import EnsembleMLP, HybridStudent
from qkd_qiskit.train_step import FusedStep

pytestmark = pytest.mark.skipif(not fused.kernels_available(), reason="numba not importable")

M, N, STEPS = 4, 40, 6


def _with_cz(st):
    """A student whose weight stages carry constant phases (CZ gates): the kernel's phase mode 1."""
    qc = st.circuit.copy()
    qc.cz(0, 1)
    qc.cz(1, 2)
    return dataclasses.replace(st, circuit=qc)


STUDENTS = {
    "hea": lambda: build_student("hea", n_qubits=4, layers=2),  # no phases
    "q3": lambda: build_student("q3", n_qubits=5, layers=3),  # weight-dependent phases, probabilities read out
    "hea_cz": lambda: _with_cz(build_student("hea", n_qubits=3, layers=2)),  # constant phases
}


def _data(st, dtype):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.random((N, 2**st.n_qubits)), dtype=dtype)
    y = torch.tensor(rng.integers(0, 3, N))
    teacher = torch.tensor(rng.normal(size=(M, N, 3)), dtype=dtype)
    idxs = [torch.tensor(rng.integers(0, N, (M, 8))) for _ in range(STEPS)]
    return x, y, teacher, idxs


def _net(st, dtype):
    return HybridStudent(st, 3, [torch.Generator().manual_seed(s) for s in range(M)], dtype=dtype)


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_fused_steps_match_torch_autograd_and_adam(name):
    st = STUDENTS[name]()
    dtype = torch.float64
    x, y, teacher, idxs = _data(st, dtype)
    kd = KDWeights(ce_weight=1.0, kd_weight=0.7, temperature=2.0)
    kd_mask = torch.tensor([True, False, True, False])
    targets = teacher_log_probs(teacher, kd)

    net_f, net_t = _net(st, dtype), _net(st, dtype)
    step = FusedStep.build(net_f, lr=0.05, kd=kd)
    assert step is not None
    if name == "hea_cz":
        assert step.t.phase_mode == 1
    elif name == "q3":
        assert step.t.phase_mode == 2
    enc = net_f.encode(x)
    fused_losses = [step(enc, y, idx, targets, kd_mask) for idx in idxs]

    opt = torch.optim.Adam(net_t.parameters(), lr=0.05)
    torch_losses = []
    with unfused():
        for idx in idxs:
            t_batch = targets.gather(1, idx.unsqueeze(-1).expand(-1, -1, 3))
            loss = distillation_loss(net_t(encoded=enc[idx]), y[idx], kd=kd, kd_mask=kd_mask, teacher_targets=t_batch)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            torch_losses.append(loss.detach())
    for a, b in zip(fused_losses, torch_losses):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    idle = set(idle_weights(st))
    live = [j for j, w in enumerate(st.weight_params) if w not in idle]
    assert (net_f.quantum.weights[:, live] - net_t.quantum.weights[:, live]).abs().max() < 1e-9
    for p_f, p_t in zip(net_f.head.parameters(), net_t.head.parameters()):
        assert (p_f - p_t).abs().max() < 1e-9
    assert step.steps == STEPS


@pytest.mark.parametrize("sizes", [[8, 3], [8, 6, 5, 3]], ids=["linear", "mlp_two_hidden"])
def test_fused_mlp_steps_match_torch_autograd_and_adam(sizes):
    """The teacher and the linear student: layers, ReLU, CE + KD and Adam in one kernel."""
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(N, sizes[0])))
    y = torch.tensor(rng.integers(0, 3, N))
    kd = KDWeights(ce_weight=0.5, kd_weight=1.0, temperature=3.0)
    targets = teacher_log_probs(torch.tensor(rng.normal(size=(M, N, 3))), kd)
    kd_mask = torch.tensor([False, True, True, False])
    idxs = [torch.tensor(rng.integers(0, N, (M, 8))) for _ in range(STEPS)]
    nets = [EnsembleMLP(sizes, [torch.Generator().manual_seed(s) for s in range(M)], torch.float64) for _ in range(2)]
    step = FusedStep.build(nets[0], lr=0.05, kd=kd)
    opt = torch.optim.Adam(nets[1].parameters(), lr=0.05)
    for idx in idxs:
        a = step(x, y, idx, targets, kd_mask)
        b = distillation_loss(nets[1](x[idx]), y[idx], kd=kd, kd_mask=kd_mask,
                              teacher_targets=targets.gather(1, idx.unsqueeze(-1).expand(-1, -1, 3)))
        opt.zero_grad()
        b.sum().backward()
        opt.step()
        assert torch.allclose(a, b.detach(), atol=1e-12, rtol=0)
    for p_f, p_t in zip(nets[0].parameters(), nets[1].parameters()):
        assert (p_f - p_t).abs().max() < 1e-10


def test_float32_steps_track_torch():
    """The trainer's dtype: losses of the same steps agree to float32 rounding."""
    st = STUDENTS["q3"]()
    x, y, _, idxs = _data(st, torch.float32)
    net_f, net_t = _net(st, torch.float32), _net(st, torch.float32)
    step = FusedStep.build(net_f, lr=0.1)
    enc = net_f.encode(x)
    opt = torch.optim.Adam(net_t.parameters(), lr=0.1)
    for idx in idxs:
        a = step(enc, y, idx)
        with unfused():
            b = distillation_loss(net_t(encoded=enc[idx]), y[idx])
            opt.zero_grad()
            b.sum().backward()
            opt.step()
        assert (a - b.detach()).abs().max() < 1e-5


def test_trainer_takes_the_fused_step_only_where_it_applies(monkeypatch):
    calls = []
    original = FusedStep.__call__
    monkeypatch.setattr(FusedStep, "__call__", lambda self, *a: calls.append(1) or original(self, *a))
    st = build_student("hea", n_qubits=3, layers=1)
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 8)).astype(np.float32), rng.integers(0, 3, 24)
    settings = TrainSettings(lr=0.1, max_epochs=2, patience=5, batch_size=8)
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    train_ensemble(HybridStudent(st, 3, gens), x[:16], y[:16], x[16:], y[16:], [0, 1], settings, progress=False)
    assert len(calls) == 4  # 2 epochs x 2 mini-batches
    assert isinstance(FusedStep.build(EnsembleMLP([8, 4, 3], gens), lr=0.1), FusedStep)
    for net in (HybridStudent(st, 3, gens, readout_norm="affine"), HybridStudent(st, 3, gens, head_hidden=(4,))):
        assert FusedStep.build(net, lr=0.1) is None
        train_ensemble(net, x[:16], y[:16], x[16:], y[16:], [0, 1], settings, progress=False)
    with unfused():
        assert FusedStep.build(HybridStudent(st, 3, gens), lr=0.1) is None
    assert len(calls) == 4


def test_wrong_encoded_states_are_refused_before_any_update():
    st = build_student("hea", n_qubits=3, layers=1)
    net = HybridStudent(st, 3, [torch.Generator().manual_seed(0)])
    step = FusedStep.build(net, lr=0.1)
    before = net.quantum.weights.detach().clone()
    with pytest.raises(ValueError, match=r"expected real encoded states \(N, 8\)"):
        step(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    assert torch.equal(net.quantum.weights, before) and step.steps == 0


@pytest.mark.parametrize("call, message", [
    (lambda st, e, y: st(e, y, torch.zeros(2, 2, dtype=torch.long)), r"idx must be integer rows \(M=1, B\)"),
    (lambda st, e, y: st(e, y, torch.tensor([[0, 5]])), r"idx rows must be in \[0, 5\), got 0\.\.5"),
    (lambda st, e, y: st(e, y + 3, torch.tensor([[0, 1]])), r"labels must be 5 integers in \[0, 3\)"),
    (lambda st, e, y: st(e, y, torch.tensor([[0, 1]]), torch.zeros(1, 4, 3)), r"teacher_targets must be \(1, 5, 3\)"),
    (lambda st, e, y: st(e, y, torch.tensor([[0, 1]]), torch.zeros(1, 5, 3), torch.tensor([True, False])),
     r"kd_mask must be \(1,\)"),
])
def test_bad_batches_are_refused_before_any_update(call, message):
    """The kernels index without bounds checks: every index is checked first."""
    net = EnsembleMLP([4, 3], [torch.Generator().manual_seed(0)])
    step = FusedStep.build(net, lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=message):
        call(step, torch.rand(5, 4), torch.zeros(5, dtype=torch.long))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters())) and step.steps == 0
