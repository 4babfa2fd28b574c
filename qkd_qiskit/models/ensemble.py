"""Model ensembles: M independent models (one per seed) evaluated in one batched call.

Every model of this package maps features ``x`` of shape ``(M, B, F)`` to logits ``(M, B, C)``;
every parameter and buffer carries the model index as its leading dimension. That one convention
lets the trainer train the seeds of an architecture together, each with its own initialisation and
data order, and lets a checkpoint hold one model as the ``[m]`` slice of every tensor.

Example:
    >>> gens = [torch.Generator().manual_seed(s) for s in range(3)]
    >>> mlp = EnsembleMLP([64, 16, 8, 3], gens)
    >>> mlp(torch.zeros(3, 5, 64)).shape, count_params(mlp)
    (torch.Size([3, 5, 3]), 1203)
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Sequence

import torch
from torch import nn


def uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Uniform in ``[-bound, bound)`` from ``gen`` alone (drawn in float64, then cast): torch's default
    ``nn.Linear`` init, one model at a time."""
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)


class EnsembleLinear(nn.Module):
    """``M`` independent affine maps ``in_features -> out_features`` (torch's default init per model)."""

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.stack(
            [uniform((in_features, out_features), bound, g, dtype) for g in generators]))
        self.bias = nn.Parameter(torch.stack([uniform((out_features,), bound, g, dtype) for g in generators]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.weight.shape[0] or x.shape[2] != self.weight.shape[1]:
            raise ValueError(f"EnsembleLinear: expected input (M={self.weight.shape[0]}, B, "
                             f"{self.weight.shape[1]}), got {tuple(x.shape)}")
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)


class EnsembleMLP(nn.Module):
    """Stack of :class:`EnsembleLinear` with ReLU between layers; outputs logits (softmax is in the loss)."""

    def __init__(self, sizes: Sequence[int], generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layers = nn.ModuleList(
            EnsembleLinear(a, b, generators, dtype) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def n_models(model: nn.Module) -> int:
    return next(model.parameters()).shape[0]


def count_params(model: nn.Module) -> int:
    """Trainable parameters of ONE model of the ensemble, counted from the module itself."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total // n_models(model)


def model_state(model: nn.Module, m: int) -> dict[str, torch.Tensor]:
    """The state of model ``m`` alone (the ``[m]`` slice of every tensor), ready for ``torch.save``."""
    return {k: v[m].detach().clone() for k, v in model.state_dict().items()}


def load_model_states(model: nn.Module, states: Sequence[dict[str, torch.Tensor]]) -> nn.Module:
    """Load one saved state per model into an ensemble built with ``len(states)`` models."""
    stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
    model.load_state_dict(stacked)
    return model


def narrowable(model: nn.Module) -> bool:
    """Whether :func:`narrow_models` can drop models from ``model``: every parameter and buffer is
    stacked over the models (leading dimension M) and saved in the ``state_dict``, so the full
    ensemble can be restored from a ``state_dict`` of M models."""
    tensors = list(chain(model.parameters(), model.buffers()))
    m = tensors[0].shape[0] if tensors and tensors[0].dim() else None
    saved = {id(t) for t in model.state_dict(keep_vars=True).values()}
    return m is not None and all(t.dim() and t.shape[0] == m and id(t) in saved for t in tensors)


def narrow_models(model: nn.Module, rows: Sequence[int], ids: Sequence[int]) -> None:
    """Keep only the models at positions ``rows`` of the ensemble, in place (gradients dropped).

    ``ids`` are the kept models' indices in the ensemble as built: a module holding per-model state
    other than tensors (e.g. random generators) defines ``select_models(ids)`` and is told. The
    trainer drops models that stopped early, so the others train on a smaller batch; the models that
    remain compute what they computed before (every op of this package is batched over the model
    axis without mixing models), bit for bit as long as 4 or more models remain (the trainer's
    ``NARROW_FLOOR``; tests/training/test_early_stop_narrowing.py checks it).
    Restore the ensemble with :func:`restore_models`.

    Example:
        >>> mlp = EnsembleMLP([2, 1], [torch.Generator().manual_seed(s) for s in range(3)])
        >>> w2 = mlp.layers[0].weight[2].clone()
        >>> narrow_models(mlp, [2], ids=[2]); mlp.layers[0].weight.shape, torch.equal(mlp.layers[0].weight[0], w2)
        (torch.Size([1, 2, 1]), True)
    """
    index = torch.as_tensor(list(rows), dtype=torch.long)
    with torch.no_grad():
        for t in chain(model.parameters(), model.buffers()):
            t.set_(t[index.to(t.device)].clone())
            t.grad = None
    for mod in model.modules():
        if hasattr(mod, "select_models"):
            mod.select_models(list(ids))


def restore_models(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give a narrowed ensemble back all its models: every tensor takes its full-size value from
    ``state`` (a ``state_dict`` of the whole ensemble), then per-model state is reset."""
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            t.set_(state[name].detach().clone().to(t.device))
            t.grad = None
    m = next(iter(state.values())).shape[0]
    for mod in model.modules():
        if hasattr(mod, "select_models"):
            mod.select_models(list(range(m)))
