import math

import numpy as np
import pytest
import torch

from qkd_qiskit.distill import (
    KDWeights,
    TrainSettings,
    classification_metrics,
    distillation_loss,
    train_ensemble,
)
from qkd_qiskit.models import build_model


def test_kd_off_is_cross_entropy():
    s = torch.randn(2, 5, 3)
    y = torch.randint(0, 3, (2, 5))
    ce = torch.stack([torch.nn.functional.cross_entropy(s[m], y[m]) for m in range(2)])
    assert torch.allclose(distillation_loss(s, y), ce)
    assert torch.allclose(distillation_loss(s, y, None, KDWeights(ce_weight=0.5)), 0.5 * ce)


def test_kd_loss_matches_hand_computation():
    s = torch.tensor([[[1.0, 0.0, -1.0]]])
    t = torch.tensor([[[0.0, 2.0, 0.0]]])
    y = torch.tensor([[1]])
    T, a, b = 2.0, 0.3, 0.7

    def softmax(v):
        e = [math.exp(u) for u in v]
        return [u / sum(e) for u in e]

    ce = -math.log(softmax([1.0, 0.0, -1.0])[1])
    ps, pt = softmax([0.5, 0.0, -0.5]), softmax([0.0, 1.0, 0.0])
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    expected = a * ce + b * T * T * kl
    got = distillation_loss(s, y, t, KDWeights(ce_weight=a, kd_weight=b, temperature=T))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # the paper's setting: CE + KL
    pt1, ps1 = softmax([0.0, 2.0, 0.0]), softmax([1.0, 0.0, -1.0])
    kl1 = sum(p * math.log(p / q) for p, q in zip(pt1, ps1))
    assert distillation_loss(s, y, t).item() == pytest.approx(ce + kl1, rel=1e-6)


def test_kl_term_vanishes_when_student_equals_teacher():
    s = torch.randn(1, 4, 3)
    y = torch.randint(0, 3, (1, 4))
    assert torch.allclose(distillation_loss(s, y, s.clone()), distillation_loss(s, y))


def test_metrics_match_sklearn_definitions_by_hand():
    y = np.array([0, 0, 1, 2, 2])
    p = np.array([0, 1, 1, 2, 0])
    m = classification_metrics(y, p, 3)
    # per-class F1: class0 P=1/2 R=1/2 ->.5 ; class1 P=1/2 R=1 -> 2/3 ; class2 P=1 R=1/2 -> 2/3
    assert m["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert m["f1_weighted"] == pytest.approx((2 * 0.5 + 1 * 2 / 3 + 2 * 2 / 3) / 5)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def _train(seeds, epochs=15):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (64, 8)).astype(np.float32)
    y = (x[:, 0] != x[:, 1]).astype(np.int64)
    net = build_model("teacher_mlp", 8, 2, [torch.Generator().manual_seed(s) for s in seeds])
    out = train_ensemble(net, x, y, x[:16], y[:16], seeds, TrainSettings(lr=0.05, max_epochs=epochs, patience=3,
                                                                            batch_size=8), progress=False)
    return net, out


def test_training_is_deterministic_and_restores_best_weights():
    net_a, out_a = _train([0, 1])
    net_b, out_b = _train([0, 1])
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(a, b)
    for o in out_a:
        best = min(h["val_loss"] for h in o.history)
        assert o.best_val_loss == pytest.approx(best)
        assert o.history[o.best_epoch - 1]["val_loss"] == pytest.approx(best)
        assert o.epochs_trained == len(o.history) <= 15
        assert o.epochs_trained == 15 or o.epochs_trained - o.best_epoch == 3


def test_kd_mask_switches_the_kd_term_per_model():
    s = torch.randn(2, 6, 3)
    t = torch.randn(2, 6, 3)
    y = torch.randint(0, 3, (2, 6))
    w = KDWeights(0.4, 0.6, 2.0)
    mixed = distillation_loss(s, y, t, w, kd_mask=torch.tensor([True, False]))
    assert torch.allclose(mixed[0], distillation_loss(s[:1], y[:1], t[:1], w)[0])
    assert torch.allclose(mixed[1], distillation_loss(s[1:], y[1:], None, w)[0])
