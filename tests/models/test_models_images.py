"""Image models: LeNet-5 teachers, reductions, PCA fitted on the training split."""


import numpy as np
import pytest
import torch

from qkd_qiskit.circuits import (
    encoding_capacity,
)
from qkd_qiskit.models import build_model, count_params


def _gens(n):
    return [torch.Generator().manual_seed(i) for i in range(n)]


# ---------------------------------------------------------------------------------------- loaders



def test_lenet5_parameter_counts_and_independent_models():
    for shape, count in [((1, 28, 28), 44426), ((3, 32, 32), 62006), ((1, 8, 8), 19754)]:
        f = int(np.prod(shape))
        net = build_model("lenet5", f, 10, _gens(3), image_shape=shape)
        assert count_params(net) == count
        x = torch.rand(3, 4, f)
        out = net(x)
        assert out.shape == (3, 4, 10)
        single = build_model("lenet5", f, 10, _gens(3)[1:2], image_shape=shape)
        assert torch.allclose(single(x[1:2]), out[1:2], atol=1e-5)   # model 1 alone = slice 1 of the ensemble


@pytest.mark.parametrize("encoding", ["amplitude", "angle", "dense_angle"])
@pytest.mark.parametrize("qubits", [4, 8])
def test_reduction_output_sizes(qubits, encoding):
    cap = encoding_capacity(encoding, qubits)
    x = torch.rand(2, 5, 784)
    for red in ("fc", "crop", "pool", "pca"):
        net = build_model("hasan", 784, 10, _gens(2), image_shape=(1, 28, 28), qubits=qubits,
                          encoding=encoding, reduction=red)
        net.fit_reduction(np.random.default_rng(0).random((300, 784)))
        assert net.reduce.out_features == cap and net.reduce(x).shape == (2, 5, cap)
        assert net(x).shape == (2, 5, 10)
        if encoding != "amplitude":
            z = net.reduce(x).detach()
            assert float(z.min()) >= 0 and float(z.max()) <= 1
        # encode only where the inputs can be embedded once: fixed reduction and an encodable circuit
        assert hasattr(net, "encode") == (red != "fc" and encoding != "dense_angle")
        if hasattr(net, "encode"):
            enc = net.encode(x[0]).unsqueeze(0).expand(2, -1, -1)
            assert torch.allclose(net(encoded=enc), net(x[:1].expand(2, -1, -1)), atol=1e-5)
    # 8x8 digits: crop / pool give at most the 64 pixels (amplitude pads)
    small = build_model("hasan", 64, 10, _gens(1), image_shape=(1, 8, 8), qubits=8, reduction="crop")
    assert small.reduce.out_features == 64


def test_pca_is_fitted_on_train_only():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x_train = rng.random((200, 64)).astype(np.float32)
    net = build_model("hasan", 64, 3, _gens(2), image_shape=(1, 8, 8), qubits=4, reduction="pca")
    with pytest.raises(RuntimeError, match="not fitted"):
        net(torch.rand(2, 3, 64))
    net.fit_reduction(x_train)
    ref = PCA(16).fit(x_train.astype(np.float64))
    comp = net.reduce.components[0].double().numpy()
    assert np.allclose(np.abs(comp.T @ ref.components_.T).diagonal(), 1, atol=1e-4)
    assert torch.equal(net.reduce.components[0], net.reduce.components[1])


# -------------------------------------------------------------------------------- encodings
