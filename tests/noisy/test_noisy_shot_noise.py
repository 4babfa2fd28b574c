"""Shot-noise injection (option ``noise_shots``): its covariance is that of ``shots`` measurements."""

import torch

from qkd_qiskit.models.noisy_student import shot_noise


def test_probability_noise_has_the_multinomial_covariance():
    p = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    n, shots = 20000, 100
    gens = [torch.Generator().manual_seed(0)]
    draws = shot_noise(p.expand(1, n, 4), "probs", shots, gens)[0] - p
    expected = (torch.diag(p) - torch.outer(p, p)) / shots  # multinomial / shots, by hand
    assert torch.allclose(torch.cov(draws.T), expected, atol=2e-4)
    assert torch.allclose(draws.sum(-1), torch.zeros(n, dtype=torch.float64), atol=1e-12)  # still sums to 1


def test_z_noise_has_the_binomial_variance_and_models_draw_independently():
    z = torch.tensor([0.0, 0.6, -0.9], dtype=torch.float64)
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    draws = shot_noise(z.expand(2, 20000, 3), "z", 400, gens) - z
    assert torch.allclose(draws[0].var(0), (1 - z**2) / 400, rtol=0.05)
    alone = shot_noise(z.expand(1, 20000, 3), "z", 400, [torch.Generator().manual_seed(1)]) - z
    assert torch.equal(alone[0], draws[0])  # model 0's noise does not depend on the other models
