import torch

from qkd_qiskit.models import build_model, count_params, load_model_states, model_state


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_parameter_counts_match_the_paper():
    # 64*16+16 + 16*8+8 + 8*3+3 = 1203 ; 64*3+3 = 195 (Piperno et al.)
    assert count_params(build_model("teacher_mlp", 64, 3, gens([0, 1, 2]))) == 1203
    assert count_params(build_model("linear", 64, 3, gens([0]))) == 195


def test_ensemble_members_equal_independent_models():
    ens = build_model("teacher_mlp", 64, 3, gens([4, 9]))
    solo = build_model("teacher_mlp", 64, 3, gens([9]))
    x = torch.rand(2, 7, 64)
    assert torch.allclose(ens(x)[1], solo(x[1:2])[0], atol=1e-6)
    # hand computation of the teacher's forward for model 1
    (l1, l2, l3) = solo.layers
    h = torch.relu(x[1] @ l1.weight[0] + l1.bias[0])
    h = torch.relu(h @ l2.weight[0] + l2.bias[0])
    assert torch.allclose(ens(x)[1], h @ l3.weight[0] + l3.bias[0], atol=1e-6)


def test_state_slices_round_trip():
    ens = build_model("linear", 8, 3, gens([1, 2, 3]))
    one = load_model_states(build_model("linear", 8, 3, gens([0])), [model_state(ens, 2)])
    x = torch.rand(1, 5, 8)
    assert torch.equal(one(x)[0], ens(x.expand(3, -1, -1))[2])
