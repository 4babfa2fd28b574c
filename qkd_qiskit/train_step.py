"""The fused training step: one Adam step of every model of an ensemble, in compiled code.

Why by hand: with the stage chain fused (:mod:`qkd_qiskit.engine.fused`), what was left of a
trainer step was torch dispatch around it: the head, the loss, autograd and Adam cost ~2-3 ms of a
~7 ms step at 24 models and ~75 % of the step at one model (``docs/engine_speed.md``, fifth
session), and the chain's kept states of 24 models no longer fit the core's cache. Here ONE numba
kernel (:func:`~qkd_qiskit.engine.fused_kernels.hybrid_step`) does, model by model: the slot angles
and phases from the weights, the chain's forward
(:func:`~qkd_qiskit.engine.fused_kernels.forward_model`), the linear head, the CE + KD loss
(:func:`~qkd_qiskit.distill.distillation_loss`'s formula) and its gradient, the chain's backward,
the chain rule down to the weights, and Adam (``torch.optim.Adam``'s update with its defaults),
while that model's states are in cache. Each model's arithmetic depends on that model alone.
The classical models (:class:`~qkd_qiskit.models.EnsembleMLP`: the teacher, the linear student)
get the same treatment (their layers, ReLU, loss, backward and Adam in one kernel): their step was
pure torch dispatch (~1.3 ms for 12 teachers of 64-16-8-3 on 32 samples each).

What qualifies (:meth:`FusedStep.build`): an :class:`~qkd_qiskit.models.EnsembleMLP`, or a
:class:`~qkd_qiskit.models.HybridStudent` itself (not a subclass) with no read-out normalisation and
a one-layer head whose circuit the fused chain runs with encodable inputs (amplitude embedding);
every parameter trainable, float32/float64 on CPU. Everything else, and everything inside
:func:`qkd_qiskit.engine.unfused`, trains with torch autograd and ``torch.optim.Adam``; the two agree
up to rounding (``tests/training/test_train_step.py``). The kernels index without bounds checks, so
:meth:`FusedStep.__call__` checks every shape and row index first (one line, ValueError).

Example:
    >>> import torch
    >>> from qkd_qiskit.circuits import build_student
    >>> from qkd_qiskit.models import HybridStudent
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> net = HybridStudent(build_student("hea", n_qubits=2, layers=1), 3, gens)
    >>> step = FusedStep.build(net, lr=0.1)
    >>> enc = net.encode(torch.rand(10, 4))
    >>> loss = step(enc, torch.zeros(10, dtype=torch.long), torch.tensor([[0, 1], [2, 3]]))
    >>> loss.shape, step.steps
    (torch.Size([2]), 1)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from .engine import fused
from .models import EnsembleMLP, HybridStudent

__all__ = ["FusedStep"]


def _kernels():
    """The compiled step kernels (:mod:`qkd_qiskit.engine.fused_kernels`; numba is imported only
    once a fused step is built)."""
    from .engine import fused_kernels

    return fused_kernels


class FusedStep:
    """Adam steps of a model ensemble by one compiled kernel per step (see the module docstring):
    :meth:`build` picks the kernel for the model, or returns None. Owns Adam's moments; the trainer
    tells it which models remain after an early stop (:meth:`narrow`)."""

    def __init__(self, model: nn.Module, lr: float, kd, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.model = model
        self.lr, self.betas, self.eps = lr, betas, eps
        self.loss_w = np.array([kd.ce_weight, kd.kd_weight, kd.temperature], dtype=np.float64)
        self.moments = [[np.zeros(p.shape, dtype=p.detach().numpy().dtype) for p in self._params()] for _ in range(2)]
        self.steps = 0
        self._labels_ok: torch.Tensor | None = None  # the last labels tensor checked (the trainer passes one)

    @staticmethod
    def build(model: nn.Module, lr: float, kd=None) -> FusedStep | None:
        """A fused step for ``model``, or None where it does not qualify (the trainer then uses
        torch): a plain :class:`~qkd_qiskit.models.HybridStudent` (see the module docstring) or an
        :class:`~qkd_qiskit.models.EnsembleMLP` (the teacher, the linear student), every parameter
        trainable, float32/float64 on CPU. ``kd``: a :class:`~qkd_qiskit.distill.KDWeights`
        (default CE + KL at T = 1)."""
        params = list(model.parameters())
        if (not fused.enabled() or not fused.kernels_available() or not all(p.requires_grad for p in params)
                or any(p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64) for p in params)):
            return None
        kd = kd if kd is not None else SimpleNamespace(ce_weight=1.0, kd_weight=1.0, temperature=1.0)
        if type(model) is EnsembleMLP and len(params) == 2 * len(model.layers):
            return _MLPStep(model, lr, kd)
        if (type(model) is HybridStudent and model.readout_norm is None and len(model.head.layers) == 1
                and len(params) == 3):
            tables = model.quantum.program.fused_step_tables(params[0].dtype)
            if tables is not None:
                return _HybridStep(model, lr, kd, tables)
        return None

    def _params(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _check(self, inputs: torch.Tensor) -> None:
        raise NotImplementedError

    def _run(self, params: list[np.ndarray], adam: np.ndarray, inputs: np.ndarray, labels: np.ndarray,
             idx: np.ndarray, t_logp: np.ndarray, kd_on: np.ndarray, loss: np.ndarray) -> None:
        raise NotImplementedError

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor,
                 teacher_targets: torch.Tensor | None = None, kd_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One step on each model's mini-batch: ``inputs`` ``(N, ...)`` (a hybrid student's encoded
        states, an MLP's features) and ``labels`` ``(N,)`` shared by the models, ``idx`` ``(M, B)``
        rows per model, ``teacher_targets`` ``(M, N, C)`` the teacher's log-probabilities
        (:func:`~qkd_qiskit.distill.teacher_log_probs`; None: KD off), ``kd_mask`` ``(M,)`` which
        models use them. Updates the parameters in place; returns each model's loss before the
        update, ``(M,)``."""
        self._check(inputs)
        params = [p.detach().numpy() for p in self._params()]
        dt, m, n, n_cls = params[0].dtype, params[0].shape[0], inputs.shape[0], params[-1].shape[-1]
        rows = self._check_batch(m, n, n_cls, labels, idx, teacher_targets, kd_mask)
        if teacher_targets is None:
            t_logp, kd_on = np.zeros((1, 1, n_cls), dtype=dt), np.zeros(m, dtype=np.bool_)
        else:
            t_logp = np.ascontiguousarray(teacher_targets.detach().numpy(), dtype=dt)
            kd_on = np.ones(m, dtype=np.bool_) if kd_mask is None else kd_mask.cpu().numpy().astype(np.bool_)
        self.steps += 1
        b1, b2 = self.betas
        adam = np.array([self.lr, b1, b2, self.eps, 1 - b1 ** self.steps, (1 - b2 ** self.steps) ** 0.5])
        loss = np.empty(m, dtype=dt)
        self._run(params, adam, np.ascontiguousarray(inputs.detach().numpy(), dtype=dt),
                  np.ascontiguousarray(labels.numpy(), dtype=np.int64), rows, t_logp, kd_on, loss)
        return torch.from_numpy(loss)

    def _check_batch(self, m: int, n: int, n_cls: int, labels: torch.Tensor, idx: torch.Tensor,
                     teacher_targets: torch.Tensor | None, kd_mask: torch.Tensor | None) -> np.ndarray:
        """Every shape and index the kernel reads (it does not check bounds); ``idx`` as int64."""
        if idx.dim() != 2 or idx.shape[0] != m or idx.is_floating_point() or idx.is_complex():
            raise ValueError(f"FusedStep: idx must be integer rows (M={m}, B), got {tuple(idx.shape)} {idx.dtype}")
        rows = np.ascontiguousarray(idx.numpy(), dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"FusedStep: idx rows must be in [0, {n}), got {rows.min()}..{rows.max()}")
        if labels is not self._labels_ok:
            bad_range = n and not 0 <= int(labels.min()) <= int(labels.max()) < n_cls
            if labels.shape != (n,) or labels.is_floating_point() or bad_range:
                raise ValueError(f"FusedStep: labels must be {n} integers in [0, {n_cls}), got {tuple(labels.shape)} "
                                 f"{labels.dtype}")
            self._labels_ok = labels
        if teacher_targets is not None and tuple(teacher_targets.shape) != (m, n, n_cls):
            raise ValueError(f"FusedStep: teacher_targets must be ({m}, {n}, {n_cls}), "
                             f"got {tuple(teacher_targets.shape)}")
        if kd_mask is not None and tuple(kd_mask.shape) != (m,):
            raise ValueError(f"FusedStep: kd_mask must be ({m},), got {tuple(kd_mask.shape)}")
        return rows

    def narrow(self, rows: list[int]) -> None:
        """Keep Adam's moments of the models at positions ``rows`` only (the trainer narrowed the
        model the same way)."""
        self.moments = [[np.ascontiguousarray(mo[rows]) for mo in moments] for moments in self.moments]


class _HybridStep(FusedStep):
    """:func:`~qkd_qiskit.engine.fused_kernels.hybrid_step` for a plain
    :class:`~qkd_qiskit.models.HybridStudent`."""

    def __init__(self, model: HybridStudent, lr: float, kd, tables: SimpleNamespace):
        super().__init__(model, lr, kd)
        self.t = tables
        self._work: dict[int, tuple[np.ndarray, ...]] = {}

    def _params(self) -> list[torch.Tensor]:
        layer = self.model.head.layers[0]
        return [self.model.quantum.weights, layer.weight, layer.bias]

    def _check(self, inputs: torch.Tensor) -> None:
        size = self.t.src.shape[1]
        if inputs.is_complex() or inputs.dim() != 2 or inputs.shape[1] != size:
            raise ValueError(f"FusedStep: expected real encoded states (N, {size}), "
                             f"got {tuple(inputs.shape)} {inputs.dtype}")

    def _workspace(self, b: int, real: np.dtype) -> tuple[np.ndarray, ...]:
        """One model's kept states for a batch of ``b`` (reused by each model in turn)."""
        if b not in self._work:
            a = fused.state_arrays(self.t, 1, b, real, self.t.phase_mode > 0, keep=True)
            self._work[b] = (a.x, a.uq, a.kbl, a.kbh, a.hs, a.ws)
        return self._work[b]

    def _run(self, params, adam, inputs, labels, idx, t_logp, kd_on, loss) -> None:
        (w, hw, hb), (m1w, m1h, m1b), (m2w, m2h, m2b), t = params, *self.moments, self.t
        _kernels().hybrid_step(
            w, hw, hb, m1w, m2w, m1h, m2h, m1b, m2b, adam, t.slot_a, t.slot_off, t.phase_mode, t.const, t.diag_a,
            t.diag_off, t.diag_pat, t.const_phi, t.abc, t.depth, t.h, t.lo_used, t.hi_used, t.has_perm, t.src,
            t.readout, inputs, labels, idx, t_logp, kd_on, self.loss_w, *self._workspace(idx.shape[1], w.dtype), loss)


class _MLPStep(FusedStep):
    """:func:`~qkd_qiskit.engine.fused_kernels.mlp_step` for an :class:`~qkd_qiskit.models.EnsembleMLP`."""

    def _params(self) -> list[torch.Tensor]:
        return [p for layer in self.model.layers for p in (layer.weight, layer.bias)]

    def _check(self, inputs: torch.Tensor) -> None:
        n_in = self.model.layers[0].weight.shape[1]
        if inputs.is_complex() or inputs.dim() != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"FusedStep: expected real features (N, {n_in}), "
                             f"got {tuple(inputs.shape)} {inputs.dtype}")

    def _run(self, params, adam, inputs, labels, idx, t_logp, kd_on, loss) -> None:
        m1, m2 = self.moments
        _kernels().mlp_step(tuple(params[0::2]), tuple(params[1::2]), tuple(m1[0::2]), tuple(m2[0::2]),
                            tuple(m1[1::2]), tuple(m2[1::2]), adam, inputs, labels, idx, t_logp, kd_on,
                            self.loss_w, loss)
