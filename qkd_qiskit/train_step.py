"""The fused training step: one Adam step of every model of an ensemble, in compiled code.

Why by hand: with the stage chain fused (:mod:`qkd_qiskit.engine.fused`), what was left of a
trainer step was torch dispatch around it: the head, the loss, autograd and Adam cost ~2-3 ms of a
~7 ms step at 24 models and ~75 % of the step at one model (``docs/engine_speed.md``, fifth
session), and the chain's kept states of 24 models no longer fit the core's cache. Here ONE numba
kernel does, model by model: the slot angles and phases from the weights, the chain's forward
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
every parameter trainable, float32/float64 on CPU. Everything else, and everything inside :func:`qkd_qiskit.engine.unfused`, trains with
torch autograd and ``torch.optim.Adam``; the two agree up to rounding
(``tests/training/test_train_step.py``).

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
from numba import njit
from torch import nn

from .engine import fused
from .engine.fused_kernels import backward_model, backward_scratch, forward_model, forward_scratch
from .models import EnsembleMLP, HybridStudent

__all__ = ["FusedStep"]

_JIT = dict(cache=True, nogil=True)  # no fastmath: see qkd_qiskit.engine.fused_kernels


@njit(**_JIT)
def _log_softmax(z, out):
    """``out = log softmax(z)`` of one row."""
    top = z[0]
    for c in range(1, z.shape[0]):
        top = max(top, z[c])
    total = 0.0
    for c in range(z.shape[0]):
        total += np.exp(z[c] - top)
    lse = top + np.log(total)
    for c in range(z.shape[0]):
        out[c] = z[c] - lse


@njit(**_JIT)
def _adam(p, g, m1, m2, adam):
    """torch's Adam update (no weight decay, no amsgrad) of one flat parameter ``p`` with gradient
    ``g``; ``adam`` = (lr, beta1, beta2, eps, 1 - beta1^t, sqrt(1 - beta2^t))."""
    lr, b1, b2, eps, bc1, bc2s = adam[0], adam[1], adam[2], adam[3], adam[4], adam[5]
    step_size = lr / bc1
    for i in range(p.shape[0]):
        m1[i] += (1.0 - b1) * (g[i] - m1[i])
        m2[i] = m2[i] * b2 + (1.0 - b2) * g[i] * g[i]
        p[i] -= step_size * m1[i] / (np.sqrt(m2[i]) / bc2s + eps)


@njit(**_JIT)
def _head_loss(q, hw, hb, y_rows, labels, t_rows, kd, loss_w, z, ls, lt, gz):
    """Logits ``q @ hw + hb`` of one model's batch, its loss (returned) and ``gz = d loss / d logits``.

    ``loss = ce_w * mean CE + kd * kd_w * T^2 * mean KL(p_t || softmax(z / T))`` as in
    :func:`~qkd_qiskit.distill.distillation_loss`, with ``t_rows`` the teacher's log-probabilities."""
    b_dim, n_cls, n_out = q.shape[0], hb.shape[0], q.shape[1]
    ce_w, kd_w, temp = loss_w[0], loss_w[1], loss_w[2]
    ce = 0.0
    kl = 0.0
    for b in range(b_dim):
        for c in range(n_cls):
            acc = hb[c]
            for k in range(n_out):
                acc += q[b, k] * hw[k, c]
            z[c] = acc
        _log_softmax(z, ls)
        y = labels[y_rows[b]]
        ce -= ls[y]
        for c in range(n_cls):
            gz[b, c] = ce_w * (np.exp(ls[c]) - (1.0 if c == y else 0.0)) / b_dim
        if kd:
            for c in range(n_cls):
                z[c] = z[c] / temp
            _log_softmax(z, lt)
            tp = t_rows[y_rows[b]]
            mass = 0.0
            for c in range(n_cls):
                p_t = np.exp(tp[c])
                mass += p_t
                kl += p_t * (tp[c] - lt[c])
            for c in range(n_cls):
                gz[b, c] += kd_w * temp * (np.exp(lt[c]) * mass - np.exp(tp[c])) / b_dim
    loss = ce_w * ce / b_dim
    if kd:
        loss += kd_w * temp * temp * kl / b_dim
    return loss


@njit(**_JIT)
def _step(w, hw, hb, m1w, m2w, m1h, m2h, m1b, m2b, adam, slot_a, slot_off, phase_mode, const, diag_a, diag_off, diag_pat, const_phi,
          abc, depth, h, lo_used, hi_used, has_perm, src, readout, enc, labels, idx, t_logp, kd_on, loss_w,
          x, uq, kbl, kbh, hs, ws, loss_out):
    """One training step of every model (``idx`` (M, B): each model's mini-batch rows of ``enc``;
    ``m1*``/``m2*``: Adam's first and second moments of the weights, head weight and head bias)."""
    m_dim, b_dim = idx.shape
    n_st, size = src.shape
    n_out, n_cls, n_w = readout.shape[1], hb.shape[1], w.shape[1]
    dt = w.dtype
    ftmp = forward_scratch(x, src, uq, h, readout)
    btmp = backward_scratch(x, src, uq, h, depth, readout)
    theta, gtheta = np.empty(slot_a.shape[1], dtype=dt), np.empty(slot_a.shape[1], dtype=dt)
    phase, gphase = np.empty((n_st, size), dtype=uq.dtype), np.empty((n_st, size), dtype=uq.dtype)
    gphi = np.empty(n_st * size, dtype=dt)
    psi, no_gx = np.empty((b_dim, size), dtype=dt), np.empty((0, size), dtype=dt)  # inputs are constants
    q, gq, gz = np.empty((b_dim, n_out), dtype=dt), np.empty((b_dim, n_out), dtype=dt), np.empty((b_dim, n_cls), dtype=dt)
    z, ls, lt = np.empty(n_cls, dtype=dt), np.empty(n_cls, dtype=dt), np.empty(n_cls, dtype=dt)
    gw, ghw, ghb = np.empty(n_w, dtype=dt), np.empty((n_out, n_cls), dtype=dt), np.empty(n_cls, dtype=dt)
    has_phase = phase_mode > 0
    for m in range(m_dim):
        wm = w[m]
        theta[:] = slot_off + np.dot(wm, slot_a)
        if phase_mode == 2:
            phi = np.dot(diag_off + np.dot(wm, diag_a), diag_pat) + const_phi
            for s in range(n_st):
                for j in range(size):
                    a = phi[s * size + j]
                    phase[s, j] = np.cos(a) + 1j * np.sin(a)
        elif phase_mode == 1:
            phase[:, :] = const
        rows = idx[m]
        for b in range(b_dim):
            psi[b, :] = enc[rows[b]]
        forward_model(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase, psi, psi, False,
                      False, readout, True, x[0], uq[0], kbl[0], kbh[0], hs[0], ws[0], q, *ftmp)
        loss_out[m] = _head_loss(q, hw[m], hb[m], rows, labels, t_logp[m if kd_on[m] else 0], kd_on[m], loss_w,
                                 z, ls, lt, gz)
        ghw[:, :] = 0.0
        ghb[:] = 0.0
        for b in range(b_dim):
            for c in range(n_cls):
                g = gz[b, c]
                ghb[c] += g
                for k in range(n_out):
                    ghw[k, c] += q[b, k] * g
            for k in range(n_out):
                acc = 0.0
                for c in range(n_cls):
                    acc += gz[b, c] * hw[m, k, c]
                gq[b, k] = acc
        backward_model(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase, False, readout,
                       x[0], uq[0], kbl[0], kbh[0], hs[0], ws[0], gq, gtheta, gphase, no_gx, no_gx, *btmp)
        gw[:] = np.dot(slot_a, gtheta)
        if phase_mode == 2:  # d phase / d phi = i phase: d loss / d phi = Im(G conj(phase))
            for s in range(n_st):
                for j in range(size):
                    p, gp = phase[s, j], gphase[s, j]
                    gphi[s * size + j] = gp.imag * p.real - gp.real * p.imag
            gw += np.dot(diag_a, np.dot(diag_pat, gphi))
        _adam(wm, gw, m1w[m], m2w[m], adam)
        _adam(hw[m].reshape(-1), ghw.reshape(-1), m1h[m].reshape(-1), m2h[m].reshape(-1), adam)
        _adam(hb[m], ghb, m1b[m], m2b[m], adam)


@njit(**_JIT)
def _mlp_step(ws, bs, m1w, m2w, m1b, m2b, adam, x, labels, idx, t_logp, kd_on, loss_w, loss_out):
    """One training step of every model of an MLP ensemble: layers ``ws[l]`` (M, in, out) and
    ``bs[l]`` (M, out), ReLU between them (:class:`~qkd_qiskit.models.EnsembleMLP`), inputs ``x``
    (N, F) shared by the models, ``idx`` (M, B) each model's mini-batch rows."""
    m_dim, b_dim = idx.shape
    n_layers = len(ws)
    dt = x.dtype
    widths = np.empty(n_layers + 1, dtype=np.int64)
    widths[0] = x.shape[1]
    for layer in range(n_layers):
        widths[layer + 1] = ws[layer].shape[2]
    offsets = np.zeros(n_layers + 1, dtype=np.int64)
    for layer in range(1, n_layers + 1):
        offsets[layer] = offsets[layer - 1] + b_dim * widths[layer - 1]
    acts = np.empty(offsets[n_layers], dtype=dt)  # the input and every hidden layer's output, (B, width) each
    n_cls = widths[n_layers]
    z, ls, lt = np.empty(n_cls, dtype=dt), np.empty(n_cls, dtype=dt), np.empty(n_cls, dtype=dt)
    gz = np.empty((b_dim, n_cls), dtype=dt)
    for m in range(m_dim):
        rows = idx[m]
        a_in = acts[0:b_dim * widths[0]].reshape(b_dim, widths[0])
        for b in range(b_dim):
            a_in[b, :] = x[rows[b]]
        for layer in range(n_layers - 1):
            a_out = acts[offsets[layer + 1]:offsets[layer + 1] + b_dim * widths[layer + 1]].reshape(b_dim, widths[layer + 1])
            np.dot(a_in, ws[layer][m], a_out)
            bias = bs[layer][m]
            for b in range(b_dim):
                for k in range(widths[layer + 1]):
                    a_out[b, k] = max(a_out[b, k] + bias[k], 0.0)
            a_in = a_out
        last = n_layers - 1
        loss_out[m] = _head_loss(a_in, ws[last][m], bs[last][m], rows, labels, t_logp[m if kd_on[m] else 0],
                                 kd_on[m], loss_w, z, ls, lt, gz)
        g = gz
        for layer in range(n_layers - 1, -1, -1):
            a_in = acts[offsets[layer]:offsets[layer] + b_dim * widths[layer]].reshape(b_dim, widths[layer])
            w_l = ws[layer][m]
            gw = np.dot(a_in.T, g)
            gb = np.zeros(widths[layer + 1], dtype=dt)
            for b in range(b_dim):
                for k in range(widths[layer + 1]):
                    gb[k] += g[b, k]
            if layer > 0:  # through the ReLU of the layer below (its output a_in > 0)
                g_prev = np.dot(g, w_l.T)
                for b in range(b_dim):
                    for k in range(widths[layer]):
                        if not a_in[b, k] > 0:
                            g_prev[b, k] = 0.0
                g = g_prev
            _adam(w_l.reshape(-1), gw.reshape(-1), m1w[layer][m].reshape(-1), m2w[layer][m].reshape(-1), adam)
            _adam(bs[layer][m], gb, m1b[layer][m], m2b[layer][m], adam)


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
        dt = params[0].dtype
        m = idx.shape[0]
        if teacher_targets is None:
            t_logp, kd_on = np.zeros((1, 1, params[-1].shape[-1]), dtype=dt), np.zeros(m, dtype=np.bool_)
        else:
            t_logp = np.ascontiguousarray(teacher_targets.detach().numpy(), dtype=dt)
            kd_on = np.ones(m, dtype=np.bool_) if kd_mask is None else kd_mask.cpu().numpy().astype(np.bool_)
        self.steps += 1
        b1, b2 = self.betas
        adam = np.array([self.lr, b1, b2, self.eps, 1 - b1 ** self.steps, (1 - b2 ** self.steps) ** 0.5])
        loss = np.empty(m, dtype=dt)
        self._run(params, adam, np.ascontiguousarray(inputs.detach().numpy(), dtype=dt),
                  np.ascontiguousarray(labels.numpy(), dtype=np.int64), np.ascontiguousarray(idx.numpy(), dtype=np.int64),
                  t_logp, kd_on, loss)
        return torch.from_numpy(loss)

    def narrow(self, rows: list[int]) -> None:
        """Keep Adam's moments of the models at positions ``rows`` only (the trainer narrowed the
        model the same way)."""
        self.moments = [[np.ascontiguousarray(mo[rows]) for mo in moments] for moments in self.moments]


class _HybridStep(FusedStep):
    """:func:`_step` for a plain :class:`~qkd_qiskit.models.HybridStudent`."""

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
            t = self.t
            n_st, size, l_dim = t.src.shape[0], t.src.shape[1], 1 << t.h
            a_dim = size // l_dim
            self._work[b] = (np.empty((1, n_st + 1, 2, size * b), dtype=real), np.empty((1, n_st, t.n, 2, 2), dtype=t.cdt),
                             np.empty((1, n_st, 2 * l_dim, 2 * l_dim), dtype=real),
                             np.empty((1, n_st, 2 * a_dim, 2 * a_dim), dtype=real),
                             np.empty((1, n_st, 2, size * b), dtype=real),
                             np.empty((1, n_st if t.phase_mode else 0, 2, size * b), dtype=real))
        return self._work[b]

    def _run(self, params, adam, inputs, labels, idx, t_logp, kd_on, loss) -> None:
        (w, hw, hb), (m1w, m1h, m1b), (m2w, m2h, m2b), t = params, *self.moments, self.t
        _step(w, hw, hb, m1w, m2w, m1h, m2h, m1b, m2b, adam, t.slot_a, t.slot_off, t.phase_mode, t.const, t.diag_a,
              t.diag_off, t.diag_pat, t.const_phi, t.abc, t.depth, t.h, t.lo_used, t.hi_used, t.has_perm, t.src,
              t.readout, inputs, labels, idx, t_logp, kd_on, self.loss_w, *self._workspace(idx.shape[1], w.dtype),
              loss)


class _MLPStep(FusedStep):
    """:func:`_mlp_step` for an :class:`~qkd_qiskit.models.EnsembleMLP`."""

    def _params(self) -> list[torch.Tensor]:
        return [p for layer in self.model.layers for p in (layer.weight, layer.bias)]

    def _check(self, inputs: torch.Tensor) -> None:
        n_in = self.model.layers[0].weight.shape[1]
        if inputs.is_complex() or inputs.dim() != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"FusedStep: expected real features (N, {n_in}), got {tuple(inputs.shape)} {inputs.dtype}")

    def _run(self, params, adam, inputs, labels, idx, t_logp, kd_on, loss) -> None:
        m1, m2 = self.moments
        _mlp_step(tuple(params[0::2]), tuple(params[1::2]), tuple(m1[0::2]), tuple(m2[0::2]), tuple(m1[1::2]),
                  tuple(m2[1::2]), adam, inputs, labels, idx, t_logp, kd_on, self.loss_w, loss)
