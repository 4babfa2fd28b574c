"""Read-out normalisation between a student's circuit and its head (QuantumNAT-style), so that an
affine shrink of the read-outs by device noise does not move the decision.

On a noisy device each read-out ``r`` of a student becomes roughly ``a * r + c`` (``a`` = 0.2 on
Eagle, 0.7 on Heron; /work/shared/papers/NOISE.md), and a head trained on exact read-outs then
answers with its bias. :class:`ReadoutNorm` standardises each read-out, per model of the ensemble:
``z = (r - mean) / sqrt(var + eps)``. While training, ``mean`` / ``var`` are the mini-batch's (and
running averages of them are kept, as ``BatchNorm`` does); in evaluation the running averages are
used, so predictions are deterministic and are saved with the checkpoint. Given the statistics of
the *backend's* read-outs of training samples instead (:func:`readout_statistics`, QuantumNAT's
post-measurement normalisation), a shrink ``a * r + c`` (``a > 0``) cancels: the head sees the same
``z`` (up to ``eps``).

Kinds (student option ``readout_norm``): ``none`` (no layer; the papers' architecture), ``batch``
(standardise only, no parameters), ``affine`` (standardise, then a learnt per-read-out scale and
shift, as ``BatchNorm(affine=True)``; with a linear head this only reparameterises it).

Hand-written rather than ``torch.nn.BatchNorm1d``: every buffer carries the model index first (the
ensemble convention of :mod:`.ensemble`, so a checkpoint holds one model as the ``[m]`` slice), and
the statistics can be replaced at evaluation time.

Example:
    >>> norm = ReadoutNorm("batch", n_outputs=2, n_models=1).eval()
    >>> r = torch.tensor([[[0.9, -0.2], [0.5, 0.2], [0.1, 0.6]]])       # (M=1, B=3, 2) read-outs
    >>> z = norm(r, readout_statistics(r[0]))                            # standardised with their own stats
    >>> shrunk = 0.2 * r + 0.05                                          # a noisy device's affine shrink
    >>> bool(torch.allclose(norm(shrunk, readout_statistics(shrunk[0])), z, atol=1e-3))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

READOUT_NORMS = ("none", "batch", "affine")
EPS = 1e-6
"""Added to the variance (read-outs of a 6-qubit student vary by ~1e-2; a = 0.2 shrinks that to ~4e-4)."""
MOMENTUM = 0.1
"""Weight of each training mini-batch in the running statistics (``BatchNorm``'s default)."""


def readout_statistics(readouts: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, var)`` per read-out of samples ``(N, n_outputs)`` (numpy or torch; the population
    variance): the statistics that :class:`ReadoutNorm` (and ``trained.head_logits``) can use
    instead of the trained ones, e.g. of a backend's read-outs of training samples."""
    r = torch.as_tensor(np.asarray(readouts, dtype=np.float64) if not isinstance(readouts, torch.Tensor)
                        else readouts.double())
    if r.dim() != 2 or r.shape[0] < 2:
        raise ValueError(f"readout_statistics: expected (N >= 2, n_outputs) read-outs, got {tuple(r.shape)}")
    return r.mean(0), r.var(0, unbiased=False)


class ReadoutNorm(nn.Module):
    """Per-model standardisation of read-outs ``(M, B, n_outputs)`` (see the module docstring)."""

    def __init__(self, kind: str, n_outputs: int, n_models: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        if kind not in READOUT_NORMS or kind == "none":
            raise ValueError(f"ReadoutNorm: kind must be batch or affine, got {kind!r}")
        self.kind = kind
        self.register_buffer("running_mean", torch.zeros(n_models, n_outputs, dtype=dtype))
        self.register_buffer("running_var", torch.ones(n_models, n_outputs, dtype=dtype))
        if kind == "affine":
            self.weight = nn.Parameter(torch.ones(n_models, n_outputs, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(n_models, n_outputs, dtype=dtype))

    def forward(self, r: torch.Tensor, statistics: tuple[Any, Any] | None = None) -> torch.Tensor:
        """Standardised read-outs. ``statistics``: ``(mean, var)`` ``(n_outputs,)`` or ``(M, n_outputs)``
        to use instead of the batch's (training) or the running ones (evaluation)."""
        if statistics is not None:
            mean, var = (torch.as_tensor(s, dtype=r.dtype, device=r.device) for s in statistics)
            mean, var = mean.expand(r.shape[0], -1), var.expand(r.shape[0], -1)
        elif self.training:
            mean, var = r.mean(1), r.var(1, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), MOMENTUM)
                self.running_var.lerp_(var.detach().to(self.running_var.dtype), MOMENTUM)
        else:
            mean, var = self.running_mean, self.running_var
        z = (r - mean.unsqueeze(1)) / torch.sqrt(var.unsqueeze(1) + EPS)
        if self.kind == "affine":
            z = z * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)
        return z
