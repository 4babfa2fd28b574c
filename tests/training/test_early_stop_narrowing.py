"""Early-stopped models leave the training batch (``train_ensemble(narrow=True)``, the default): the
batch really shrinks, and every model's outcome, history and final weights are bit for bit those of
the same ensemble trained with every model kept in the batch to the end (``narrow=False``, the
trainer as it was before narrowing)."""

import numpy as np
import pytest
import torch

from qkd_qiskit.circuits import build_student
from qkd_qiskit.distill import NARROW_FLOOR, KDWeights, TrainSettings, train_ensemble
from qkd_qiskit.models import EnsembleMLP, HybridStudent, NoisyStudent, narrowable

SEEDS = list(range(7))


def _data(n_features, n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3]).astype(np.int64) + (x[:, 0] > 0.8)
    return x[:120], y[:120], x[120:], y[120:]


def _mlp():
    return EnsembleMLP([8, 6, 3], [torch.Generator().manual_seed(s) for s in SEEDS])


def _hybrid():
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    return HybridStudent(build_student("hea", n_qubits=3, layers=2), 3, gens, readout_norm="affine")


def _hybrid_fused_step():
    """No read-out normalisation: trained by the fused step (qkd_qiskit.train_step), whose Adam
    moments are narrowed with the model."""
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    return HybridStudent(build_student("q3", n_qubits=4, layers=2), 3, gens)


def _noisy_shots():
    """Per-model shot-noise generators: state outside the tensors (``NoisyStudent.select_models``)."""
    from qkd_qiskit.backends import AerProfile

    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    manila = AerProfile(kind="aer", device="fake_manila", name="manila")
    return NoisyStudent(build_student("hea", n_qubits=3, layers=1), 3, gens, torch.float64, noise=manila, shots=200)


class _BatchSizes:
    """Records the number of models of every forward call."""

    def __init__(self, model):
        self.sizes = []
        model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        x = args[0] if args else kwargs["encoded"]
        self.sizes.append(x.shape[0])


def _train(build, narrow):
    torch.manual_seed(0)
    net = build()
    sizes = _BatchSizes(net)
    x, y, xv, yv = _data(8)
    gen = torch.Generator().manual_seed(5)
    teacher_train = torch.randn(len(SEEDS), len(x), 3, generator=gen)
    teacher_val = torch.randn(len(SEEDS), len(xv), 3, generator=gen)
    kd_mask = torch.tensor([s % 2 == 0 for s in SEEDS])
    outcomes = train_ensemble(net, x, y, xv, yv, SEEDS, TrainSettings(lr=0.1, max_epochs=40, patience=3, batch_size=16),
                              teacher_train, teacher_val, KDWeights(temperature=2.0), kd_mask, progress=False,
                              narrow=narrow)
    return net, outcomes, sizes.sizes


@pytest.mark.parametrize("build", [_mlp, _hybrid, _hybrid_fused_step, _noisy_shots],
                         ids=["mlp", "hea_readout_norm", "q3_fused_step", "noisy_shots"])
def test_narrowing_changes_no_bit(build):
    net_a, out_a, sizes_a = _train(build, narrow=False)
    net_b, out_b, sizes_b = _train(build, narrow=True)
    assert narrowable(net_b)
    assert set(sizes_a) == {len(SEEDS)}
    stops = sorted(o.epochs_trained for o in out_a)
    assert stops[0] < stops[-1], "the seeds should stop at different epochs for this test to mean anything"
    assert min(sizes_b) == NARROW_FLOOR and sum(sizes_b) < sum(sizes_a)
    for a, b in zip(out_a, out_b):
        assert (a.best_epoch, a.epochs_trained, a.best_val_loss) == (b.best_epoch, b.epochs_trained, b.best_val_loss)
        assert a.history == b.history and len(a.history) == a.epochs_trained
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
