"""Read-out normalisation against hand computations (numpy): standardise-then-head logits, the
running statistics of training, and the invariance of the decision under an affine shrink of the
read-outs (noise) when the statistics are recomputed on the shrunk read-outs."""

from __future__ import annotations

import numpy as np
import torch

from qkd_qiskit.circuits import build_student
from qkd_qiskit.models import HybridStudent, ReadoutNorm, readout_statistics
from qkd_qiskit.models.readout_norm import EPS, MOMENTUM


def hand_logits(r, mean, var, w, b, gamma=1.0, beta=0.0):
    return ((r - mean) / np.sqrt(var + EPS) * gamma + beta) @ w + b


def student(kind):
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    return HybridStudent(build_student("hea", n_qubits=3, layers=1), 3, gens, torch.float64, readout_norm=kind).eval()


def test_evaluation_uses_the_running_statistics_of_each_model():
    net = student("affine")
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for name in ("running_mean", "running_var", "weight", "bias"):
            getattr(net.readout_norm, name).copy_(torch.tensor(rng.uniform(0.2, 1.0, (2, 3))))
    r = rng.uniform(-1, 1, (2, 5, 3))
    got = net.readout_logits(torch.tensor(r)).detach().numpy()
    nrm, lin = net.readout_norm, net.head.layers[0]
    for m in range(2):
        want = hand_logits(r[m], nrm.running_mean[m].numpy(), nrm.running_var[m].numpy(), lin.weight[m].detach().numpy(),
                           lin.bias[m].detach().numpy(), nrm.weight[m].detach().numpy(), nrm.bias[m].detach().numpy())
        assert np.allclose(got[m], want, atol=1e-12)


def test_training_standardises_with_the_batch_and_updates_running_averages():
    norm = ReadoutNorm("batch", n_outputs=2, n_models=1, dtype=torch.float64).train()
    r = np.array([[0.9, -0.2], [0.5, 0.2], [0.1, 0.6], [0.3, 0.0]])
    z = norm(torch.tensor(r[None]))[0].numpy()
    mean, var = r.mean(0), r.var(0)
    assert np.allclose(z, (r - mean) / np.sqrt(var + EPS), atol=1e-12)
    assert np.allclose(norm.running_mean[0].numpy(), MOMENTUM * mean, atol=1e-12)
    assert np.allclose(norm.running_var[0].numpy(), (1 - MOMENTUM) + MOMENTUM * var, atol=1e-12)


def test_an_affine_shrink_does_not_move_the_decision_when_statistics_are_recomputed():
    net = student("batch")
    rng = np.random.default_rng(1)
    r_train, r_test = rng.uniform(-1, 1, (200, 3)), rng.uniform(-1, 1, (50, 3))
    a, c = np.array([0.2, 0.7, 0.35]), np.array([0.05, -0.1, 0.0])  # per-qubit shrink of noisy <Z>
    lin = net.head.layers[0]
    w, b = lin.weight[0].detach().numpy(), lin.bias[0].detach().numpy()

    def logits(train, test):
        got = net.readout_logits(torch.tensor(test)[None].expand(2, -1, -1), readout_statistics(train))[0]
        want = hand_logits(test, train.mean(0), train.var(0), w, b)
        assert np.allclose(got.detach().numpy(), want, atol=1e-12)
        return want

    exact = logits(r_train, r_test)
    noisy = logits(a * r_train + c, a * r_test + c)
    assert (noisy.argmax(1) == exact.argmax(1)).all()
    assert np.allclose(noisy, exact, atol=2e-3)  # equal but for EPS
    stale = net.readout_logits(torch.tensor(a * r_test + c)[None].expand(2, -1, -1), readout_statistics(r_train))[0]
    assert (stale.detach().numpy().argmax(1) != exact.argmax(1)).any()  # the trained statistics do not cancel it
