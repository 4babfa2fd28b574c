"""The fused stage chain: all weight stages of a circuit and ``|psi|^2`` as one autograd node.

Why by hand: at 6 qubits the eager engine's step is ~380 torch ops for ~5 MFLOP, so it runs
dispatch-bound at ~2 % of the arithmetic floor (``docs/engine_speed.md``); inductor generates no
code for complex tensors, and torch offers no fused kernel for a chain of small Kronecker-factored
matmuls. Here the whole chain (per-qubit 2x2 matrices from the slot angles, their Kronecker
products per half register, the half-register matmuls, phases, permutations, ``|psi|^2``) and its
hand-derived backward are loops compiled once by numba (:mod:`.fused_kernels`), called once
per step in each direction.

:func:`fused_readout` is what :class:`~.compiled.CompiledCircuit` calls when :func:`usable` says the
circuit qualifies: CPU tensors of float32/float64, every stage a weight stage (no per-sample stage
or multiplexer after the prep; amplitude-embedding students qualify), at most
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

from types import SimpleNamespace

import weakref
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from .settings import FUSED
from .stage_group import StageGroup

__all__ = ["FUSED_MAX_QUBITS", "fused_readout", "fused_tables", "kernels_available", "unfused", "usable"]

FUSED_MAX_QUBITS = 12
"""Largest register the fused chain takes (its scratch holds ``3 S 2^n B`` complex entries per model)."""

POOL_MAX_BYTES = 1 << 25
"""Workspaces up to this size are kept for reuse (training mini-batches); larger ones (an
evaluation over a whole data set) are freed after use."""

_KERNELS = None


def kernels_available() -> bool:
    """Whether numba imports (the kernels compile on first use and are cached on disk)."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from .fused_kernels import chain_backward, chain_forward
        except ImportError:
            _KERNELS = False
        else:
            _KERNELS = SimpleNamespace(chain_forward=chain_forward, chain_backward=chain_backward)
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
    """Whether the fused chain can run this program on tensors of ``dtype`` on ``device``."""
    return (FUSED and not _OFF[0] and g is not None and device.type == "cpu"
            and dtype in (torch.float32, torch.float64) and g.n <= FUSED_MAX_QUBITS
            and all(kind == "weight" for kind, _ in plan) and kernels_available())


def fused_tables(g: StageGroup, dtype: torch.dtype) -> SimpleNamespace:
    """The kernel's tables of a stage group for ``dtype`` (the caller caches them)."""
    cdt = np.complex128 if dtype == torch.float64 else np.complex64
    h = g.n // 2
    abc = g.abc.reshape(3, -1, 2, 2, 2)
    return SimpleNamespace(
        h=h, n=g.n, depth=g.depth, abc=np.ascontiguousarray((abc[..., 0] + 1j * abc[..., 1]).astype(cdt)),
        lo_used=np.array([any(q < h for q in s.local) for s in g.stages]),
        hi_used=np.array([any(q >= h for q in s.local) for s in g.stages]),
        has_perm=np.ascontiguousarray(g.has_perm), src=np.ascontiguousarray(g.src.astype(np.int64)),
        cdt=cdt, pool={},
    )


class _Token:
    """Held by the autograd node that uses a workspace; the workspace is free once the node is
    gone (its graph freed), so a graph kept for a second backward keeps its states."""


def _workspace(c: SimpleNamespace, m: int, b: int, size: int, real_dt: type, has_phase: bool
               ) -> tuple[SimpleNamespace, _Token]:
    """Scratch arrays for one call, reused from an earlier call whose backward has run (or whose
    graph was freed): fresh arrays of a few MB cost more in page faults than the kernels at 24
    models."""
    key = (m, b, size, real_dt, has_phase)
    pool = c.pool.setdefault(key, [])
    token = _Token()
    for entry in pool:
        if entry[0]() is None:
            entry[0] = weakref.ref(token)
            return entry[1], token
    n_st, l_dim = c.src.shape[0], 1 << c.h
    xr = np.empty((m, n_st + 1, size * b), dtype=real_dt)
    hr = np.empty((m, n_st, size * b), dtype=real_dt)
    ws = SimpleNamespace(
        xr=xr, xi=np.empty_like(xr), hr=hr, hi=np.empty_like(hr),
        wr=np.empty_like(hr) if has_phase else np.empty((m, 0, size * b), real_dt),
        wi=np.empty_like(hr) if has_phase else np.empty((m, 0, size * b), real_dt),
        uq=np.empty((m, n_st, c.n, 2, 2), dtype=c.cdt),
        klo=np.empty((m, n_st, l_dim, l_dim), dtype=c.cdt),
        khi=np.empty((m, n_st, size // l_dim, size // l_dim), dtype=c.cdt),
        gxr=np.empty((m, b, size), dtype=real_dt), gxi=np.empty((m, b, size), dtype=real_dt),
    )
    if (2 * n_st + 1) * m * size * b * np.dtype(real_dt).itemsize * 2 <= POOL_MAX_BYTES:
        pool.append([weakref.ref(token), ws])
    return ws, token


class _Chain(torch.autograd.Function):
    """``(theta (M, slots), phase (M, S, N) or None, psi (M, B, N)) -> psi's |amp|^2 @ readout``."""

    @staticmethod
    def forward(ctx, theta, phase, psi, readout, c):
        m, b, size = psi.shape
        real_dt = np.float64 if theta.dtype == torch.float64 else np.float32
        has_phase = phase is not None
        ws, token = _workspace(c, m, b, size, real_dt, has_phase)
        if has_phase:
            ph = phase.detach().to(torch.complex128 if c.cdt == np.complex128 else torch.complex64)
            ph = ph.contiguous().numpy()
        else:
            ph = np.zeros((1, 1, 1), dtype=c.cdt)
        x0 = psi.detach()
        psi_r = (x0.real if x0.is_complex() else x0).numpy()
        psi_i = x0.imag.numpy() if x0.is_complex() else psi_r
        all_probs = readout is None
        ro = np.zeros((1, 1), real_dt) if all_probs else readout.detach().numpy()
        out = np.empty((m, b, size if all_probs else ro.shape[1]), dtype=real_dt)
        th = np.ascontiguousarray(theta.detach().numpy())
        _KERNELS.chain_forward(th, c.abc, c.depth, c.h, c.lo_used, c.hi_used, c.has_perm, c.src, has_phase,
                               ph, psi_r, psi_i, x0.is_complex(), all_probs, ro, ws.xr, ws.xi, ws.uq, ws.klo,
                               ws.khi, ws.hr, ws.hi, ws.wr, ws.wi, out)
        if any(ctx.needs_input_grad):
            ctx.saved, ctx.token = (th, ph, has_phase, all_probs, ro, ws, c), token
            ctx.psi_complex, ctx.shape = x0.is_complex(), (m, b, size)
            ctx.phase_dtype = phase.dtype if has_phase else None
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, gout):
        th, ph, has_phase, all_probs, ro, ws, c = ctx.saved
        gtheta = np.empty_like(th)
        gphase = np.empty_like(ph) if has_phase else ph
        go = np.ascontiguousarray(gout.detach().numpy())
        _KERNELS.chain_backward(th, c.abc, c.depth, c.h, c.lo_used, c.hi_used, c.has_perm, c.src, has_phase,
                                ph, all_probs, ro, ws.xr, ws.xi, ws.uq, ws.klo, ws.khi, ws.hr, ws.hi, ws.wr,
                                ws.wi, go, gtheta, gphase, ws.gxr, ws.gxi)
        g_theta = torch.from_numpy(gtheta) if ctx.needs_input_grad[0] else None
        g_phase = None
        if has_phase and ctx.needs_input_grad[1]:
            g_phase = torch.from_numpy(gphase)
            g_phase = g_phase if ctx.phase_dtype.is_complex else g_phase.real.contiguous()
        g_psi = None
        if ctx.needs_input_grad[2]:
            g_psi = torch.complex(torch.from_numpy(ws.gxr), torch.from_numpy(ws.gxi)) if ctx.psi_complex \
                else torch.from_numpy(ws.gxr.copy())
        return g_theta, g_phase, g_psi, None, None


def fused_readout(tables: SimpleNamespace, theta: torch.Tensor, phase: torch.Tensor | None,
                  psi: torch.Tensor, readout: torch.Tensor | None) -> torch.Tensor:
    """``|amp|^2 @ readout`` ``(M, B, n_out)`` after all stages of a group (``tables``: its
    :func:`fused_tables`; ``readout`` (2^n, n_out), or None for all probabilities ``(M, B, 2^n)``).

    ``theta`` (M, slots): the group's half angles; ``phase`` (M, S, 2^n): its diagonal phases
    (or None); ``psi`` (M, B, 2^n): the prepared states (real or complex)."""
    want = theta.dtype if not psi.is_complex() else (torch.complex128 if theta.dtype == torch.float64
                                                       else torch.complex64)
    psi = psi.to(want).contiguous()
    return _Chain.apply(theta, phase, psi, readout, tables)
