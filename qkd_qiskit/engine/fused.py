"""The fused stage chain: all weight stages of a circuit and ``|psi|^2`` as one autograd node.

Why by hand: at 6 qubits the eager engine's step is ~380 torch ops for ~5 MFLOP, so it runs
dispatch-bound at ~2 % of the arithmetic floor (``docs/engine_speed.md``); inductor generates no
code for complex tensors, and torch offers no fused kernel for a chain of small Kronecker-factored
matmuls. Here the whole chain (per-qubit 2x2 matrices from the slot angles, their Kronecker
products per half register, the half-register matmuls, phases, permutations, ``|psi|^2``) and its
hand-derived backward are loops and BLAS calls compiled once by numba (:mod:`.fused_kernels`),
called once per step in each direction.

:func:`fused_readout` is what :class:`~.compiled.CompiledCircuit` calls when :func:`usable` says the
circuit qualifies and :func:`enabled` is true: CPU tensors of float32/float64, every stage a
weight stage (no per-sample stage or multiplexer after the prep; amplitude-embedding students
qualify), at most
``FUSED_MAX_QUBITS`` qubits and numba importable. Otherwise the eager path runs, with the same
results up to rounding. ``FUSED`` (here; its default is in :mod:`.settings`) switches it off:
``monkeypatch.setattr(qkd_qiskit.engine.fused, "FUSED", False)``.

Example:
    >>> import torch
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit.quantum_info import Statevector
    >>> from qkd_qiskit.engine import compile_circuit
    >>> w = [Parameter(f"w{i}") for i in range(3)]
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.ry(w[0], 0), qc.rz(w[1], 1), qc.cx(0, 1), qc.rx(w[2], 1)
    >>> vals = torch.tensor([0.3, 1.1, -0.7], dtype=torch.float64, requires_grad=True)
    >>> prog = compile_circuit(qc, [], w, readout="probs")
    >>> p = prog(None, vals)
    >>> ref = Statevector(qc.assign_parameters(vals.tolist())).probabilities()
    >>> bool(torch.allclose(p, torch.tensor(ref), atol=1e-12))
    True
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import torch

from .settings import FUSED
from .stage_group import StageGroup

__all__ = ["FUSED_MAX_QUBITS", "RECOMPUTE_BYTES", "enabled", "fused_readout", "fused_tables", "kernels_available",
           "state_arrays", "step_tables", "unfused", "usable"]

FUSED_MAX_QUBITS = 12
"""Largest register the fused chain takes (a training call keeps ``2 S + 1`` states of ``2^n B``
complex entries per model for its backward)."""

POOL_MAX_BYTES = 1 << 25
"""Workspaces up to this size are kept for reuse (training mini-batches); larger ones (an
evaluation over a whole data set) are freed after use."""

RECOMPUTE_BYTES = 1 << 22
"""A training call whose kept states (all models) would exceed this many bytes keeps none: its
backward recomputes each model's forward just before that model's backward
(:func:`~.fused_kernels.chain_backward_recompute`), so that model's states are read back from the
core's cache instead of from memory. Same bits either way. Measured (``docs/engine_speed.md``,
fifth session): 6-qubit students keep 210-260 KB per model of 32 samples; at 24 models (5-6 MB)
the kept kernels spent 1.5-1.8x per model what they spent at 1-4 models, and recomputing made the
trainer's step 15-22 % faster for the q_nd students (equal for hea); at 12 models (2.5-3 MB)
keeping was still as fast or faster."""

_KERNELS = None


def kernels_available() -> bool:
    """Whether numba imports (the kernels compile on first use and are cached on disk)."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from .fused_kernels import chain_backward, chain_backward_recompute, chain_forward
        except ImportError:
            _KERNELS = False
        else:
            _KERNELS = SimpleNamespace(chain_forward=chain_forward, chain_backward=chain_backward,
                                       chain_backward_recompute=chain_backward_recompute)
    return _KERNELS is not False


_OFF = [0]


@contextmanager
def unfused() -> Iterator[None]:
    """Inside this block every circuit runs the eager path: for callers that batch a backward
    over cotangents (``torch.autograd.grad(..., is_grads_batched=True)``, i.e. ``torch.vmap``),
    which the fused node does not support."""
    _OFF[0] += 1
    try:
        yield
    finally:
        _OFF[0] -= 1


def usable(plan: list, g: StageGroup | None, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the fused chain can run this program on tensors of ``dtype`` on ``device`` (fixed
    per program, dtype and device; :func:`enabled` is the switch checked at each call)."""
    return (g is not None and device.type == "cpu" and dtype in (torch.float32, torch.float64)
            and g.n <= FUSED_MAX_QUBITS and all(kind == "weight" for kind, _ in plan) and kernels_available())


def enabled() -> bool:
    """``FUSED`` and not inside :func:`unfused`."""
    return FUSED and not _OFF[0]


def fused_tables(g: StageGroup, readout: np.ndarray, dtype: torch.dtype) -> SimpleNamespace:
    """The kernel's tables of a stage group and read-out table ``(2^n, n_out)`` for ``dtype``
    (the caller caches them)."""
    cdt = np.complex128 if dtype == torch.float64 else np.complex64
    real = np.float64 if dtype == torch.float64 else np.float32
    h = g.n // 2
    abc = g.abc.reshape(3, -1, 2, 2, 2)
    return SimpleNamespace(
        h=h, n=g.n, depth=g.depth, abc=np.ascontiguousarray((abc[..., 0] + 1j * abc[..., 1]).astype(cdt)),
        lo_used=np.array([any(q < h for q in s.local) for s in g.stages]),
        hi_used=np.array([any(q >= h for q in s.local) for s in g.stages]),
        has_perm=np.ascontiguousarray(g.has_perm), src=np.ascontiguousarray(g.src.astype(np.int64)),
        cdt=cdt, pool={}, no_phase=np.zeros((1, 1, 1), dtype=cdt),
        readout=np.ascontiguousarray(readout, dtype=real),
    )


def step_tables(g: StageGroup, readout: np.ndarray, dtype: torch.dtype, n_w: int) -> SimpleNamespace:
    """:func:`fused_tables` plus the group's weight -> angle maps as dense arrays, for a kernel that
    computes the slot angles and phases itself (``qkd_qiskit.train_step``):

    * ``slot_a`` (P = ``n_w``, slots), ``slot_off`` (slots,): half angles ``theta = slot_off + w @ slot_a``;
    * ``phase_mode``: 0 no phases; 1 constant phases ``const`` (S, 2^n) complex; 2 weight-dependent
      phases ``exp(i phi)``, ``phi = (diag_off + w @ diag_a) @ diag_pat + const_phi`` (flat S 2^n).
    """
    c = fused_tables(g, readout, dtype)
    real = np.float64 if dtype == torch.float64 else np.float32
    c.slot_a, c.slot_off = _dense_map(g.slots, n_w, real)
    c.phase_mode = 0 if not g.has_phase else (1 if g.diag is None else 2)
    const = g.const_phase
    c.const = np.ascontiguousarray((np.cos(const) if g.real else np.exp(1j * const)).astype(c.cdt))
    if c.phase_mode == 2:
        c.diag_a, c.diag_off = _dense_map(g.diag, n_w, real)
        c.diag_pat = np.ascontiguousarray(g.diag_pat, dtype=real)
        c.const_phi = np.ascontiguousarray(const.reshape(-1), dtype=real)
    else:
        c.diag_a, c.diag_off = np.zeros((n_w, 0), dtype=real), np.zeros(0, dtype=real)
        c.diag_pat, c.const_phi = np.zeros((0, const.size), dtype=real), np.zeros(const.size, dtype=real)
    return c


def _dense_map(amap, n_w: int, real: type) -> tuple[np.ndarray, np.ndarray]:
    """``(A (n_w, slots), offset (slots,))`` with ``angles = offset + w @ A`` of an affine map that
    reads weights only."""
    if amap.in_kind is not None:
        raise ValueError("step_tables: a weight group's angles depend on inputs")
    a = np.zeros((n_w, amap.n_slots))
    if amap.w_kind == "dense":
        a[:amap.w_data.shape[0]] = amap.w_data
    elif amap.w_kind == "select":
        idx, coef = amap.w_data
        a[idx, np.arange(amap.n_slots)] = coef
    return np.ascontiguousarray(a, dtype=real), np.ascontiguousarray(amap.offset, dtype=real)


class _Token:
    """Held by the autograd node that uses a workspace. The workspace is free for the next call
    once the node is gone (its graph freed) or its backward has run (``done``)."""

    done = False


def _workspace(c: SimpleNamespace, m: int, b: int, real_dt: type, has_phase: bool, keep: bool, gx: int
               ) -> tuple[SimpleNamespace, _Token]:
    """Scratch arrays for one call, reused from an earlier call whose backward has run or whose
    graph was freed: fresh arrays cost more in page faults than the kernels at 24 models, and one
    reused workspace stays in cache (the trainer's next step starts while the previous step's
    graph is still referenced, after its backward). ``ws.gen`` counts the reuses, so a graph
    kept for a second backward notices that its states were overwritten (:meth:`_Chain.backward`).

    ``m``: models whose states are held (1: one model's, reused by each model in turn); with
    ``keep`` one state per stage (for a backward), else two; ``gx``: models of the input-state
    gradient arrays."""
    key = (m, b, real_dt, has_phase, keep, gx)
    pool = c.pool.setdefault(key, [])
    token = _Token()
    for entry in pool:
        owner = entry[0]()
        if owner is None or owner.done:
            entry[0] = weakref.ref(token)
            entry[1].gen += 1
            return entry[1], token
    ws = state_arrays(c, m, b, real_dt, has_phase, keep, gx)
    if sum(a.nbytes for a in (ws.x, ws.hs, ws.ws, ws.gxr, ws.gxi)) <= POOL_MAX_BYTES:
        pool.append([weakref.ref(token), ws])
    return ws, token


def state_arrays(c: SimpleNamespace, m: int, b: int, real_dt: type, has_phase: bool, keep: bool, gx: int = 0
                 ) -> SimpleNamespace:
    """Fresh state and matrix arrays of the kernels for ``m`` models and a batch of ``b`` (tables
    ``c`` of :func:`fused_tables`): ``x``, ``hs``, ``ws`` (with ``keep`` one state per stage, else
    two), ``uq``, ``kbl``, ``kbh``, and the input-state gradient ``gxr``/``gxi`` of ``gx`` models.
    The one home of the kernels' workspace layout (:func:`_workspace` pools them; the fused
    training step holds one model's)."""
    n_st, size, l_dim = c.src.shape[0], c.src.shape[1], 1 << c.h
    a_dim = size // l_dim
    n_x, n_h = (n_st + 1, n_st) if keep else (2, 1)
    return SimpleNamespace(
        x=np.empty((m, n_x, 2, size * b), dtype=real_dt), hs=np.empty((m, n_h, 2, size * b), dtype=real_dt),
        ws=np.empty((m, n_st if has_phase and keep else 0, 2, size * b), dtype=real_dt),
        uq=np.empty((m, n_st, c.n, 2, 2), dtype=c.cdt),
        kbl=np.empty((m, n_st, 2 * l_dim, 2 * l_dim), dtype=real_dt),
        kbh=np.empty((m, n_st, 2 * a_dim, 2 * a_dim), dtype=real_dt),
        gxr=np.empty((gx, b, size), dtype=real_dt), gxi=np.empty((gx, b, size), dtype=real_dt), gen=0,
    )


def _kept_bytes(c: SimpleNamespace, m: int, b: int, real_dt: type, has_phase: bool) -> int:
    """Bytes of the states a kept training call holds for its backward (``m`` models)."""
    n_st, size = c.src.shape
    return m * (2 * n_st + 1 + (n_st if has_phase else 0)) * 2 * size * b * np.dtype(real_dt).itemsize


def _run_forward(c: SimpleNamespace, args: tuple, ws: SimpleNamespace, out: np.ndarray, keep: bool) -> None:
    th, ph, has_phase, psi_r, psi_i, psi_complex, all_probs, ro = args
    _KERNELS.chain_forward(th, c.abc, c.depth, c.h, c.lo_used, c.hi_used, c.has_perm, c.src, has_phase, ph,
                           psi_r, psi_i, psi_complex, all_probs, ro, keep, ws.x, ws.uq, ws.kbl, ws.kbh, ws.hs,
                           ws.ws, out)


class _Chain(torch.autograd.Function):
    """``(theta (M, slots), phase (M, S, N) or None, psi (M, B, N)) -> psi's |amp|^2 @ readout``."""

    @staticmethod
    def forward(ctx, theta, phase, psi, all_probs, c):
        m, b, size = psi.shape
        real_dt = np.float64 if theta.dtype == torch.float64 else np.float32
        has_phase = phase is not None
        grad = any(ctx.needs_input_grad)
        recompute = grad and m > 1 and _kept_bytes(c, m, b, real_dt, has_phase) > RECOMPUTE_BYTES
        keep = grad and not recompute
        ws, token = _workspace(c, m if keep else 1, b, real_dt, has_phase, keep, m if keep else 0)
        if has_phase:
            ph = phase.detach().to(torch.complex128 if c.cdt == np.complex128 else torch.complex64)
            ph = ph.contiguous().numpy()
        else:
            ph = c.no_phase
        x0 = psi.detach()
        psi_r = (x0.real if x0.is_complex() else x0).numpy()
        psi_i = x0.imag.numpy() if x0.is_complex() else psi_r
        ro = c.readout
        out = np.empty((m, b, size if all_probs else ro.shape[1]), dtype=real_dt)
        th = np.ascontiguousarray(theta.detach().numpy())
        args = (th, ph, has_phase, psi_r, psi_i, x0.is_complex(), all_probs, ro)
        _run_forward(c, args, ws, out, keep)
        if grad:
            ctx.args, ctx.c, ctx.ws, ctx.gen, ctx.token, ctx.recompute = args, c, ws, ws.gen, token, recompute
            ctx.phase_dtype = phase.dtype if has_phase else None
        if not keep:
            token.done = True
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, gout):
        c, ws = ctx.c, ctx.ws
        th, ph, has_phase, psi_r, psi_i, psi_complex, all_probs, ro = ctx.args
        m, b = gout.shape[0], gout.shape[1]
        gtheta = np.empty_like(th)
        gphase = np.empty_like(ph) if has_phase else ph
        go = np.ascontiguousarray(gout.detach().numpy())
        if ctx.recompute:  # one model's states at a time, recomputed next to its backward
            ws, ctx.token = _workspace(c, 1, b, ws.x.dtype.type, has_phase, True, m)
            _KERNELS.chain_backward_recompute(th, c.abc, c.depth, c.h, c.lo_used, c.hi_used, c.has_perm, c.src,
                                              has_phase, ph, psi_r, psi_i, psi_complex, all_probs, ro, ws.x,
                                              ws.uq, ws.kbl, ws.kbh, ws.hs, ws.ws, go, gtheta, gphase, ws.gxr,
                                              ws.gxi)
        else:
            if ws.gen != ctx.gen:  # a second backward after the workspace went to another call: recompute
                ws, ctx.token = _workspace(c, m, b, ws.x.dtype.type, has_phase, True, m)
                ctx.ws, ctx.gen = ws, ws.gen
                _run_forward(c, ctx.args, ws, np.empty(tuple(gout.shape), dtype=ws.x.dtype), True)
            _KERNELS.chain_backward(th, c.abc, c.depth, c.h, c.lo_used, c.hi_used, c.has_perm, c.src, has_phase,
                                    ph, all_probs, ro, ws.x, ws.uq, ws.kbl, ws.kbh, ws.hs, ws.ws, go, gtheta,
                                    gphase, ws.gxr, ws.gxi)
        g_theta = torch.from_numpy(gtheta) if ctx.needs_input_grad[0] else None
        g_phase = None
        if has_phase and ctx.needs_input_grad[1]:
            g_phase = torch.from_numpy(gphase)
            g_phase = g_phase if ctx.phase_dtype.is_complex else g_phase.real.contiguous()
        g_psi = None
        if ctx.needs_input_grad[2]:
            g_psi = torch.complex(torch.from_numpy(ws.gxr), torch.from_numpy(ws.gxi)) if psi_complex \
                else torch.from_numpy(ws.gxr.copy())
        ctx.token.done = True
        return g_theta, g_phase, g_psi, None, None


def fused_readout(tables: SimpleNamespace, theta: torch.Tensor, phase: torch.Tensor | None,
                  psi: torch.Tensor, all_probs: bool = False) -> torch.Tensor:
    """``|amp|^2 @ readout`` ``(M, B, n_out)`` after all stages of a group (``tables``: its
    :func:`fused_tables`), or with ``all_probs`` all probabilities ``(M, B, 2^n)``.

    ``theta`` (M, slots): the group's half angles; ``phase`` (M, S, 2^n): its diagonal phases
    (or None); ``psi`` (M, B, 2^n): the prepared states (real or complex)."""
    want = theta.dtype if not psi.is_complex() else (torch.complex128 if theta.dtype == torch.float64
                                                       else torch.complex64)
    psi = psi.to(want).contiguous()
    return _Chain.apply(theta, phase, psi, all_probs, tables)
