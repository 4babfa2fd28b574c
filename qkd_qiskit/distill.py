"""Distillation loss, the seed-batched trainer and test metrics.

The trainer trains M independent models at once (see :mod:`qkd_qiskit.models`): one Adam over the
stacked parameters is M independent Adams because Adam is element-wise and the summed loss has
per-model gradients. Each model draws its own mini-batches from its own generator and keeps its
own early-stopping state, so its result depends only on its seed.

Example:
    >>> loss = distillation_loss(torch.zeros(1, 2, 3), torch.tensor([[0, 1]]))  # CE alone
    >>> round(float(loss[0]), 4)  # ln 3
    1.0986
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import narrow_models, narrowable, restore_models
from .progress import progress_bar
from .train_step import FusedStep


@dataclass(frozen=True)
class KDWeights:
    """``ce_weight * CE(y, s) + kd_weight * T^2 * KL(softmax(t/T) || softmax(s/T))``."""

    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 1.0


def teacher_log_probs(teacher_logits: torch.Tensor, kd: KDWeights) -> torch.Tensor:
    """``log softmax(teacher_logits / T)``: the KD targets, computed once per data split by the
    trainer (row by row, so a mini-batch's rows are bit for bit those computed on the batch)."""
    return F.log_softmax(teacher_logits / kd.temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, labels: torch.Tensor,
                      teacher_logits: torch.Tensor | None = None, kd: KDWeights = KDWeights(),
                      kd_mask: torch.Tensor | None = None, *,
                      teacher_targets: torch.Tensor | None = None) -> torch.Tensor:
    """Per-model loss, shape ``(M,)``, for logits ``(M, B, C)`` and labels ``(M, B)``.

    Without ``teacher_logits`` (KD off) the loss is ``ce_weight * CE`` alone. Both terms are means over
    the batch, so they are on the same scale as the paper's ``CE + KL``. ``kd_mask`` ``(M,)`` switches
    the KD term per model, so KD-on and KD-off models can share one batched ensemble.
    ``teacher_targets``: :func:`teacher_log_probs` of the teacher logits, in their place.
    """
    log_p = F.log_softmax(student_logits, dim=-1)
    ce = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(-1)
    if teacher_logits is None and teacher_targets is None:
        return kd.ce_weight * ce
    t = kd.temperature
    log_ps = F.log_softmax(student_logits / t, dim=-1)
    log_pt = teacher_targets if teacher_targets is not None else teacher_log_probs(teacher_logits, kd)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean(-1)
    if kd_mask is not None:
        kl = kl * kd_mask.to(kl.dtype)
    return kd.ce_weight * ce + kd.kd_weight * t * t * kl


@dataclass(frozen=True)
class TrainSettings:
    lr: float = 0.1
    max_epochs: int = 300
    patience: int = 50
    batch_size: int = 32


@dataclass
class ModelOutcome:
    """What training one model of the ensemble produced."""

    best_epoch: int
    epochs_trained: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)


def _to(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, device=like.device, dtype=like.dtype if np.issubdtype(x.dtype, np.floating) else None)


def prepare_inputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Inputs as the model's forward consumes them: embedded once when the model can (``encode``)."""
    if hasattr(model, "encode"):
        with torch.no_grad():
            return model.encode(x)
    return x


def apply_model(model: nn.Module, prepared: torch.Tensor) -> torch.Tensor:
    """Logits of inputs made by :func:`prepare_inputs`."""
    return model(encoded=prepared) if hasattr(model, "encode") else model(prepared)


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> torch.Tensor:
    """Logits ``(M, N, C)`` of every model of the ensemble on the same inputs ``x`` ``(N, F)``."""
    model.eval()
    ref = next(model.parameters())
    m = ref.shape[0]
    xt = prepare_inputs(model, _to(x, ref))
    out = [apply_model(model, xt[i:i + batch_size].unsqueeze(0).expand(m, -1, -1))
           for i in range(0, len(xt), batch_size)]
    return torch.cat(out, dim=1)


def train_ensemble(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, seeds: Sequence[int], settings: TrainSettings,
                   teacher_train: torch.Tensor | None = None, teacher_val: torch.Tensor | None = None,
                   kd: KDWeights = KDWeights(), kd_mask: torch.Tensor | None = None, desc: str = "train",
                   progress: bool = True, narrow: bool = True) -> list[ModelOutcome]:
    """Train the M models of ``model`` (M = ``len(seeds)``) with Adam and per-model early stopping.

    Each step is one compiled kernel (:class:`~qkd_qiskit.train_step.FusedStep`) where the model
    qualifies (plain hybrid students, MLPs), else torch autograd and ``torch.optim.Adam``.

    ``teacher_train``/``teacher_val`` are teacher logits ``(M, N, C)`` (KD on) or ``None`` (KD off);
    ``kd_mask`` ``(M,)`` selects which models use them (default: all).
    The validation loss that drives early stopping is the same objective as training, on the
    validation split. With ``narrow`` (when the model allows it, :func:`~qkd_qiskit.models.narrowable`)
    a model that stops leaves the batch (:func:`~qkd_qiskit.models.narrow_models`; see
    :data:`NARROW_FLOOR`), so the others' steps get cheaper; what they compute is unchanged bit for
    bit. On return every model holds its best-validation weights.
    """
    ref = next(model.parameters())
    n_models, n = len(seeds), len(x_train)
    xt, yt = prepare_inputs(model, _to(x_train, ref)), torch.as_tensor(y_train, device=ref.device)
    xv, yv = prepare_inputs(model, _to(x_val, ref)), torch.as_tensor(y_val, device=ref.device)
    order_gens = [torch.Generator().manual_seed(int(s) + 7919) for s in seeds]
    fused = FusedStep.build(model, settings.lr, kd)  # one compiled kernel per step where the model allows
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr) if fused is None else None
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_loss = torch.full((n_models,), math.inf, dtype=torch.float64)
    best_epoch = torch.zeros(n_models, dtype=torch.long)
    stopped_at = torch.zeros(n_models, dtype=torch.long)
    outcomes = [ModelOutcome(0, 0, math.inf) for _ in seeds]
    targets = [None if t is None else teacher_log_probs(t, kd) for t in (teacher_train, teacher_val)]
    batch = _Batch(torch.arange(n_models), *targets, kd_mask, ref.device)
    narrow = narrow and narrowable(model)
    bar = progress_bar(range(1, settings.max_epochs + 1), enabled=progress, desc=desc, leave=False,
                       mininterval=0.5)
    for epoch in bar:
        model.train()
        ids = batch.ids
        perms = torch.stack([torch.randperm(n, generator=order_gens[m]) for m in ids.tolist()]).to(ref.device)
        train_loss = torch.zeros(len(ids), dtype=torch.float64)
        for start in range(0, n, settings.batch_size):
            idx = perms[:, start:start + settings.batch_size]
            if fused is not None:
                loss = fused(xt, yt, idx, batch.t_train, batch.kd_mask)
            else:
                t_batch = _model_rows(batch.t_train, idx) if batch.t_train is not None else None
                loss = distillation_loss(apply_model(model, _rows(xt, idx)), _rows(yt, idx), kd=kd,
                                         kd_mask=batch.kd_mask, teacher_targets=t_batch)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
            train_loss += loss.detach().double().cpu() * idx.shape[1]
        model.eval()
        with torch.no_grad():
            val_loss = torch.full((n_models,), math.inf, dtype=torch.float64)
            val_loss[ids] = distillation_loss(apply_model(model, xv.expand(len(ids), -1, -1)),
                                              yv.expand(len(ids), -1), kd=kd, kd_mask=batch.kd_mask,
                                              teacher_targets=batch.t_val).double().cpu()
        active = stopped_at == 0
        improved = active & (val_loss < best_loss)
        best_loss = torch.where(improved, val_loss, best_loss)
        best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
        _keep_best(best, model, ids, improved[ids].to(ref.device))
        newly_stopped = active & (epoch - best_epoch >= settings.patience)
        stopped_at = torch.where(newly_stopped, torch.full_like(stopped_at, epoch), stopped_at)
        for pos, m in enumerate(ids.tolist()):
            if not active[m]:
                continue
            outcomes[m].history.append({"epoch": epoch, "train_loss": float(train_loss[pos] / n),
                                        "val_loss": float(val_loss[m])})
        bar.set_postfix(active=int((stopped_at == 0).sum()), best_val=f"{float(best_loss.min()):.4f}")
        if bool((stopped_at > 0).all()):
            break
        if narrow and bool(newly_stopped.any()):
            batch = batch.narrowed(model, fused if opt is None else opt, stopped_at[ids] == 0)
    stopped_at = torch.where(stopped_at == 0, torch.full_like(stopped_at, epoch), stopped_at)
    restore_models(model, best)
    model.load_state_dict(best)
    for m, o in enumerate(outcomes):
        o.best_epoch, o.epochs_trained = int(best_epoch[m]), int(stopped_at[m])
        o.best_val_loss = float(best_loss[m])
    return outcomes


def _rows(data: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``data[idx]`` for rows ``(N, ...)`` shared by the models and ``idx`` ``(M, B)``: the same copy
    as advanced indexing, by ``index_select`` (4x faster at the trainer's sizes)."""
    return data.index_select(0, idx.reshape(-1)).view(*idx.shape, *data.shape[1:])


def _model_rows(data: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``data[m, idx[m]]`` for per-model rows ``(M, N, C)`` (``data[rows, idx]``, by ``gather``)."""
    return data.gather(1, idx.unsqueeze(-1).expand(*idx.shape, data.shape[2]))


NARROW_FLOOR = 4
"""The fewest models a batch is narrowed to. From 4 models up, every architecture's forward and
backward give each model the same bits whatever the other models are (CPU, measured for the
Piperno students and checked by tests/training/test_early_stop_narrowing.py); with 1-3 models some
gradients differ in the last bits (BLAS picks other kernels for so few rows), so below 4 the stopped
models stay in the batch as passengers and the result of every unit is that of the un-narrowed run."""


@dataclass
class _Batch:
    """The models still training (``ids``: indices into the ensemble as built) and their slices of
    the per-model inputs (``t_train``/``t_val``: the teacher's :func:`teacher_log_probs`)."""

    ids: torch.Tensor
    t_train: torch.Tensor | None
    t_val: torch.Tensor | None
    kd_mask: torch.Tensor | None
    device: torch.device

    def narrowed(self, model: nn.Module, opt: torch.optim.Optimizer | FusedStep, keep: torch.Tensor) -> "_Batch":
        """Drop the models not in ``keep`` (a mask over ``ids``) from the model, the optimizer's
        per-parameter state (Adam's moments are stacked over models like the parameters) and here."""
        keep = keep.clone()
        for pos in torch.nonzero(~keep).flatten().tolist()[:max(0, NARROW_FLOOR - int(keep.sum()))]:
            keep[pos] = True  # a stopped passenger: computed, never used
        if bool(keep.all()):
            return self
        rows = torch.nonzero(keep).flatten()
        ids = self.ids[rows]
        size = len(self.ids)
        narrow_models(model, rows.tolist(), ids.tolist())
        if isinstance(opt, FusedStep):  # it keeps Adam's moments itself
            opt.narrow(rows.tolist())
        else:
            for state in opt.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value) and value.dim() and value.shape[0] == size:
                        state[key] = value[rows.to(value.device)].clone()
        dev = rows.to(self.device)
        pick = (lambda t: None if t is None else t[dev])
        return _Batch(ids, pick(self.t_train), pick(self.t_val), pick(self.kd_mask), self.device)


@torch.no_grad()
def _keep_best(best: dict[str, torch.Tensor], model: nn.Module, ids: torch.Tensor, improved: torch.Tensor) -> None:
    """Copy the improved models' tensors (positions of ``ids``) into ``best`` (all models)."""
    for k, v in model.state_dict().items():
        mask = improved.view(-1, *([1] * (v.dim() - 1)))
        rows = ids.to(v.device)
        best[k][rows] = torch.where(mask, v.detach(), best[k][rows])


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Test metrics: macro F1 (the headline), weighted F1, accuracy, confusion matrix.

    The same numbers as scikit-learn's ``f1_score(labels=range(n_classes), average="macro" /
    "weighted", zero_division=0)``, ``accuracy_score`` and ``confusion_matrix``, computed in the
    same order from one confusion matrix (tests/training/test_classification_metrics_oracle.py
    checks them against scikit-learn). Written out because scikit-learn validates its inputs on
    every call: the four calls took ~30 ms per unit, a minute and a half of the 3,500 tiny trainings
    of the KD-regimes study; this takes microseconds.

    Example:
        >>> m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
        >>> round(m["f1_macro"], 4), m["accuracy"], m["confusion_matrix"]
        (0.3889, 0.5, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, true_sum, pred_sum = np.diag(cm), cm.sum(1), cm.sum(0)
    denom = true_sum + pred_sum
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return {
        "f1_macro": float(np.average(f1)),
        "f1_weighted": float(np.average(f1, weights=true_sum)) if true_sum.sum() else 0.0,
        "accuracy": float(np.average(y_true == y_pred)),
        "confusion_matrix": cm.tolist(),
    }


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
