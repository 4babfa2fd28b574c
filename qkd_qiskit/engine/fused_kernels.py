"""Machine-code kernels of the fused stage chain (:mod:`.fused`) and of the fused training step
(:mod:`qkd_qiskit.train_step`), compiled by numba.

Every numba kernel of the package is in this one file: numba's on-disk cache (``cache=True``) is
checked against the source file of the cached function only, so a kernel in another file that
calls :func:`forward_model` would keep running the old chain from its cache after this file
changed (the numba documentation says so; it happened here during development).
``tests/engine/test_engine_fused.py`` keeps every ``njit`` here.

Everything here works on plain numpy arrays. A state is kept "stacked": its real part, then its
imaginary part, each ``(2^n, B)`` with the batch innermost, so a half-register matmul of a complex
state is ONE real matrix product ``[[Re K, -Im K], [Im K, Re K]] @ [[Re x], [Im x]]`` (BLAS sgemm /
dgemm through ``np.dot``: 40 GFLOP/s of multiply-adds on 16 x 16 x 256 here, 2x the hand-written
loops and 2.7x complex ``cgemm`` at these sizes). The basis index is ``i = a * L + l`` with ``a``
the high and ``l`` the low ``h`` qubits (little-endian, as in Qiskit). Small matrices (per-qubit
2x2, the half-register Kronecker products) are complex arrays.

Gradients follow torch's convention for a real loss: the gradient of a complex ``z = x + iy`` is
``dL/dx + i dL/dy``, so ``y = K x`` gives ``G_x = K^H G_y`` and ``G_K = G_y x^H``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["backward_model", "backward_scratch", "chain_backward", "chain_backward_recompute", "chain_forward",
           "forward_model", "forward_scratch", "hybrid_step", "mlp_step"]

_JIT = dict(cache=True, nogil=True)
"""No ``fastmath``: with it, LLVM may reassociate sums and fuse multiply-adds differently in a
kernel compiled in the running process and in the same kernel loaded from numba's disk cache (the
phase gradient's reduction gave different last bits in a fresh and a cache-warm process, so a run
with worker processes was no longer bit for bit the one-process run). Without it every variant
computes the same IEEE operations in the same order."""


@njit(**_JIT)
def _slot(abc, theta, slot, out):
    """``out = c + cos(theta) a + sin(theta) b`` of one slot (2x2 complex)."""
    t = theta[slot]
    co, si = np.cos(t), np.sin(t)
    for r in range(2):
        for c in range(2):
            out[r, c] = abc[2, slot, r, c] + co * abc[0, slot, r, c] + si * abc[1, slot, r, c]


@njit(**_JIT)
def _mm2(a, b, out):
    """``out = a @ b`` for 2x2 complex matrices (``out`` distinct from both)."""
    for r in range(2):
        for c in range(2):
            out[r, c] = a[r, 0] * b[0, c] + a[r, 1] * b[1, c]


@njit(**_JIT)
def _qubit_mats(abc, theta, s, n, depth, uq, scratch):
    """Per-qubit 2x2 matrices of stage ``s``: ``m_{D-1} ... m_1 m_0`` of the depth slots
    (``scratch``: (2, 2, 2) complex)."""
    md, tmp = scratch[0], scratch[1]
    for q in range(n):
        base = (s * n + q) * depth
        _slot(abc, theta, base, uq[q])
        for d in range(1, depth):
            _slot(abc, theta, base + d, md)
            _mm2(md, uq[q], tmp)
            uq[q, :, :] = tmp


@njit(**_JIT)
def _kron(uq, q0, nq, k):
    """``k[r, c] = prod_j uq[q0 + j, bit_j(r), bit_j(c)]`` (a half register, qubit q0 lowest)."""
    dim = 1 << nq
    for r in range(dim):
        for c in range(dim):
            v = uq[q0, r & 1, c & 1]
            for j in range(1, nq):
                v = v * uq[q0 + j, (r >> j) & 1, (c >> j) & 1]
            k[r, c] = v


@njit(**_JIT)
def _kron_back(uq, q0, nq, gk, guq):
    """Adds the gradient of :func:`_kron` for ``gk`` to ``guq[q0 : q0 + nq]``."""
    dim = 1 << nq
    for r in range(dim):
        for c in range(dim):
            g = gk[r, c]
            for j in range(nq):
                other = 1.0 + 0.0j
                for i in range(nq):
                    if i != j:
                        other = other * uq[q0 + i, (r >> i) & 1, (c >> i) & 1]
                guq[q0 + j, (r >> j) & 1, (c >> j) & 1] += g * np.conj(other)


@njit(**_JIT)
def _real_form(k, out):
    """``out = [[Re K, -Im K], [Im K, Re K]]`` (2d, 2d): the complex ``K`` acting on stacked states."""
    d = k.shape[0]
    for r in range(d):
        for c in range(d):
            out[r, c] = k[r, c].real
            out[r, d + c] = -k[r, c].imag
            out[d + r, c] = k[r, c].imag
            out[d + r, d + c] = k[r, c].real


@njit(**_JIT)
def _grad_k(mm, gk):
    """``G_K = G_y x^H`` from ``mm = [G_r; G_i] [x_r; x_i]^T`` (2d, 2d)."""
    d = gk.shape[0]
    for r in range(d):
        for c in range(d):
            gk[r, c] = (mm[r, c] + mm[d + r, d + c]) + 1j * (mm[d + r, c] - mm[r, d + c])


@njit(**_JIT)
def _swap_halves(x, out, d1, d2, b_dim):
    """``out[p, j, i] = x[p, i, j]`` for a stacked state ``(2, d1, d2, B)`` (flat ``(2, d1 d2 B)``).

    Loops here index the 3-d arrays ``(2, N, B)`` directly: views of single rows (``row[b]``)
    cost a reference count each (2.5x slower measured on the phase loop), and indexing a flat
    array at ``offset + b`` keeps LLVM from vectorising (3x slower)."""
    x3, o3 = x.reshape(2, d1 * d2, b_dim), out.reshape(2, d1 * d2, b_dim)
    for p in range(2):
        for i in range(d1):
            for j in range(d2):
                r, q = i * d2 + j, j * d1 + i
                for b in range(b_dim):
                    o3[p, q, b] = x3[p, r, b]


@njit(**_JIT)
def _dims(x, src, uq, h):
    """Basis size ``N``, batch, qubits, ``L = 2^h``, ``A = N / L`` of one model's arrays."""
    size = src.shape[1]
    l_dim = 1 << h
    return size, x.shape[2] // size, uq.shape[1], l_dim, size // l_dim


@njit(inline="always", **_JIT)
def _dot_conj(g3, i, w3, o):
    """``sum_b g[i, b] conj(w[o, b])`` of two stacked states ``(2, N, B)``, as four partial sums
    (entries ``b mod 4``) added in a fixed order: one running sum is a chain of dependent adds,
    ~4 cycles each, and the same split every run keeps the bits. (A reduction loop of its own:
    mixed with stores in one loop it ran ~4x slower.)"""
    n = g3.shape[2]
    zero = g3[0, i, 0] * 0
    r0, r1, r2, r3, i0, i1, i2, i3 = zero, zero, zero, zero, zero, zero, zero, zero
    full = n - n % 4
    for b in range(0, full, 4):
        r0 += g3[0, i, b] * w3[0, o, b] + g3[1, i, b] * w3[1, o, b]
        i0 += g3[1, i, b] * w3[0, o, b] - g3[0, i, b] * w3[1, o, b]
        r1 += g3[0, i, b + 1] * w3[0, o, b + 1] + g3[1, i, b + 1] * w3[1, o, b + 1]
        i1 += g3[1, i, b + 1] * w3[0, o, b + 1] - g3[0, i, b + 1] * w3[1, o, b + 1]
        r2 += g3[0, i, b + 2] * w3[0, o, b + 2] + g3[1, i, b + 2] * w3[1, o, b + 2]
        i2 += g3[1, i, b + 2] * w3[0, o, b + 2] - g3[0, i, b + 2] * w3[1, o, b + 2]
        r3 += g3[0, i, b + 3] * w3[0, o, b + 3] + g3[1, i, b + 3] * w3[1, o, b + 3]
        i3 += g3[1, i, b + 3] * w3[0, o, b + 3] - g3[0, i, b + 3] * w3[1, o, b + 3]
    for b in range(full, n):
        r0 += g3[0, i, b] * w3[0, o, b] + g3[1, i, b] * w3[1, o, b]
        i0 += g3[1, i, b] * w3[0, o, b] - g3[0, i, b] * w3[1, o, b]
    return ((r0 + r1) + (r2 + r3)) + 1j * ((i0 + i1) + (i2 + i3))


@njit(inline="always", **_JIT)
def _phase_rows(pr, pi, x3, r, y3, i):
    """``y[i] = (pr + i pi) x[r]`` on row ``r`` of ``x3`` into row ``i`` of ``y3`` (stacked ``(2, N, B)``)."""
    for b in range(x3.shape[2]):
        xr, xi = x3[0, r, b], x3[1, r, b]
        y3[0, i, b] = pr * xr - pi * xi
        y3[1, i, b] = pr * xi + pi * xr


@njit(inline="always", **_JIT)
def _copy_rows(x3, r, y3, i):
    """``y[i] = x[r]`` (stacked ``(2, N, B)``)."""
    for b in range(x3.shape[2]):
        y3[0, i, b] = x3[0, r, b]
        y3[1, i, b] = x3[1, r, b]


@njit(**_JIT)
def chain_forward(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase,
                  psi_r, psi_i, psi_complex, all_probs, readout, keep, x, uq, kbl, kbh, hs, ws, out):
    """All stages of all models, then ``|psi|^2`` times the read-out table.

    In: ``theta`` (M, slots) half angles; ``abc`` (3, slots, 2, 2); ``lo_used``/``hi_used``/
    ``has_perm`` (S,); ``src`` (S, N) (``y[i] = v[src[i]]``); ``phase`` (M, S, N) complex (read
    if ``has_phase``); the input states ``psi_r``/``psi_i`` (M, B, N) (``psi_i`` read only if
    ``psi_complex``); ``readout`` (N, n_out). Out: ``out`` (M, B, n_out), or the probabilities
    (M, B, N) if ``all_probs`` (``readout`` unused).

    A stage is ``y = P D (K_hi (x) K_lo) x``. The state enters as ``(A, L, B)`` rows ``a L + l``;
    ``K_hi`` mixes its ``A`` rows of length ``L B``; the result is stored as ``(L, A, B)`` (``hs``)
    so that ``K_lo`` mixes ``L`` rows of length ``A B`` (``ws``; the two halves commute); the
    phase and the permutation read it back into ``(A, L, B)``. Kept for the backward: ``x[:, s]``
    (entering stage s), ``hs``, ``ws`` (only with phases), ``uq`` (M, S, n, 2, 2) and the real
    forms ``kbl``/``kbh`` of the half matrices; every state is stacked, ``(M, S (+ 1), 2, N B)``.
    Without ``keep`` (no backward to come, or :func:`chain_backward_recompute` will recompute)
    the states only need ``x`` (M or 1, 2, ...) and ``hs`` (M or 1, 1, ...), used in turn, and
    ``ws`` is not read; with a leading size of 1 every model uses the same scratch.
    """
    tmp = forward_scratch(x, src, uq, h, readout)
    for m in range(theta.shape[0]):
        w = m if x.shape[0] > 1 else 0
        ph = phase[m] if has_phase else phase[0]
        forward_model(theta[m], abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, ph, psi_r[m],
                       psi_i[m], psi_complex, all_probs, readout, keep, x[w], uq[w], kbl[w], kbh[w], hs[w],
                       ws[w], out[m], *tmp)


@njit(**_JIT)
def forward_scratch(x, src, uq, h, readout):
    """Temporaries of :func:`forward_model` (allocated once per call, shared by the models)."""
    size, b_dim, n, l_dim, a_dim = _dims(x[0], src, uq[0], h)
    return (np.empty((2, 2, 2), dtype=uq.dtype), np.empty((l_dim, l_dim), dtype=uq.dtype),
            np.empty((a_dim, a_dim), dtype=uq.dtype), np.empty((2, size * b_dim), dtype=x.dtype),
            np.empty((2, size * b_dim), dtype=x.dtype), np.empty((readout.shape[1], b_dim), dtype=x.dtype),
            np.empty(b_dim, dtype=x.dtype))


@njit(**_JIT)
def forward_model(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase, psi_r, psi_i,
                   psi_complex, all_probs, readout, keep, x, uq, kbl, kbh, hs, ws, out,
                   scratch, klo, khi, t, v, acc, p_row):
    """:func:`chain_forward` of one model (every array here is that model's slice; the last seven are
    :func:`forward_scratch`). A building block for kernels that run more of a step per model
    (``qkd_qiskit.train_step``)."""
    size, b_dim, n, l_dim, a_dim = _dims(x, src, uq, h)
    n_st = src.shape[0]
    hi_shape, lo_shape = (2 * a_dim, l_dim * b_dim), (2 * l_dim, a_dim * b_dim)
    x3 = x[0].reshape(2, size, b_dim)
    for i in range(size):
        x0r, x0i = x3[0, i], x3[1, i]
        for b in range(b_dim):
            x0r[b] = psi_r[b, i]
            x0i[b] = psi_i[b, i] if psi_complex else 0.0
    for s in range(n_st):
        cur, nxt, hk = (s, s + 1, s) if keep else (s % 2, (s + 1) % 2, 0)
        _qubit_mats(abc, theta, s, n, depth, uq[s], scratch)
        if hi_used[s]:
            _kron(uq[s], h, n - h, khi)
            _real_form(khi, kbh[s])
            np.dot(kbh[s], x[cur].reshape(hi_shape), t.reshape(hi_shape))
            _swap_halves(t, hs[hk], a_dim, l_dim, b_dim)
        else:
            _swap_halves(x[cur], hs[hk], a_dim, l_dim, b_dim)
        if lo_used[s]:
            w = ws[s] if has_phase and keep else v
            _kron(uq[s], 0, h, klo)
            _real_form(klo, kbl[s])
            np.dot(kbl[s], hs[hk].reshape(lo_shape), w.reshape(lo_shape))
        else:
            w = hs[hk]
            if has_phase and keep:
                ws[s, :, :] = w
        w3, y3 = w.reshape(2, size, b_dim), x[nxt].reshape(2, size, b_dim)
        for i in range(size):
            j = src[s, i] if has_perm[s] else i
            o = (j % l_dim) * a_dim + j // l_dim
            if has_phase:
                _phase_rows(phase[s, j].real, phase[s, j].imag, w3, o, y3, i)
            else:
                _copy_rows(w3, o, y3, i)
    f3 = x[n_st if keep else n_st % 2].reshape(2, size, b_dim)
    if all_probs:
        for i in range(size):
            f_r, f_i = f3[0, i], f3[1, i]
            for b in range(b_dim):
                out[b, i] = f_r[b] * f_r[b] + f_i[b] * f_i[b]
        return
    n_out = readout.shape[1]
    acc[:] = 0.0
    for i in range(size):
        f_r, f_i = f3[0, i], f3[1, i]
        for b in range(b_dim):
            p_row[b] = f_r[b] * f_r[b] + f_i[b] * f_i[b]
        for o in range(n_out):
            r = readout[i, o]
            a_o = acc[o]
            for b in range(b_dim):
                a_o[b] += r * p_row[b]
    for b in range(b_dim):
        for o in range(n_out):
            out[b, o] = acc[o, b]


@njit(**_JIT)
def _qubit_back(abc, theta, s, n, depth, guq, gtheta, scratch):
    """Adds ``d loss / d theta`` of stage ``s``'s slots, given the per-qubit gradients ``guq``.

    With ``u = m_{D-1} ... m_0``: ``G_{m_d} = (m_{D-1} ... m_{d+1})^H G_u (m_{d-1} ... m_0)^H`` and
    ``d loss / d theta_d = Re sum conj(G_{m_d}) (-sin a + cos b)``. ``scratch``: (3 D + 2, 2, 2)."""
    mats, pre, suf = scratch[:depth], scratch[depth:2 * depth], scratch[2 * depth:3 * depth]
    tmp, gm = scratch[3 * depth], scratch[3 * depth + 1]
    for q in range(n):
        base = (s * n + q) * depth
        for d in range(depth):
            _slot(abc, theta, base + d, mats[d])
        pre[0, :, :] = 0.0  # pre[d] = m_{d-1} ... m_0
        pre[0, 0, 0] = 1.0
        pre[0, 1, 1] = 1.0
        for d in range(1, depth):
            _mm2(mats[d - 1], pre[d - 1], pre[d])
        suf[depth - 1, :, :] = 0.0  # suf[d] = m_{D-1} ... m_{d+1}
        suf[depth - 1, 0, 0] = 1.0
        suf[depth - 1, 1, 1] = 1.0
        for d in range(depth - 2, -1, -1):
            _mm2(suf[d + 1], mats[d + 1], suf[d])
        g = guq[q]
        for d in range(depth):
            for r in range(2):  # tmp = suf^H g
                for c in range(2):
                    tmp[r, c] = np.conj(suf[d, 0, r]) * g[0, c] + np.conj(suf[d, 1, r]) * g[1, c]
            for r in range(2):  # gm = tmp pre^H
                for c in range(2):
                    gm[r, c] = tmp[r, 0] * np.conj(pre[d, c, 0]) + tmp[r, 1] * np.conj(pre[d, c, 1])
            t = theta[base + d]
            co, si = np.cos(t), np.sin(t)
            acc = 0.0
            for r in range(2):
                for c in range(2):
                    dm = -si * abc[0, base + d, r, c] + co * abc[1, base + d, r, c]
                    acc += gm[r, c].real * dm.real + gm[r, c].imag * dm.imag
            gtheta[base + d] += acc


@njit(**_JIT)
def chain_backward(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase,
                   all_probs, readout, x, uq, kbl, kbh, hs, ws, gout, gtheta, gphase, gxr, gxi):
    """Backward of :func:`chain_forward` (run with ``keep``) for ``gout`` (M, B, n_out) (or
    (M, B, N) if ``all_probs``).

    Per half: ``mm = [G_r; G_i] [x_r; x_i]^T`` gives ``G_K`` (:func:`_grad_k`) and
    ``[G_x_r; G_x_i] = K_real^T [G_r; G_i]`` (the real form of ``K^H``): two matrix products.
    Writes ``gtheta`` (M, slots), ``gphase`` (M, S, N) (with phases) and the input states'
    gradient ``gxr``/``gxi`` (M, B, N)."""
    tmp = backward_scratch(x, src, uq, h, depth, readout)
    for m in range(theta.shape[0]):
        gp = gphase[m] if has_phase else gphase[0]
        ph = phase[m] if has_phase else phase[0]
        backward_model(theta[m], abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, ph, all_probs,
                        readout, x[m], uq[m], kbl[m], kbh[m], hs[m], ws[m], gout[m], gtheta[m], gp, gxr[m],
                        gxi[m], *tmp)


@njit(**_JIT)
def chain_backward_recompute(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase,
                             psi_r, psi_i, psi_complex, all_probs, readout, x, uq, kbl, kbh, hs, ws, gout,
                             gtheta, gphase, gxr, gxi):
    """:func:`chain_backward` without kept states: for each model in turn, its forward is recomputed
    (with ``keep``) into the one-model workspace ``x``, ``uq``, ... (leading size 1), then its
    backward runs while those states are still in cache. The same operations in the same order as
    a kept forward, so the same bits; it pays when the kept states of all models would not fit in
    the core's cache (``fused.RECOMPUTE_BYTES``)."""
    ftmp = forward_scratch(x, src, uq, h, readout)
    btmp = backward_scratch(x, src, uq, h, depth, readout)
    out = np.empty((gout.shape[1], gout.shape[2]), dtype=x.dtype)
    for m in range(theta.shape[0]):
        ph = phase[m] if has_phase else phase[0]
        gp = gphase[m] if has_phase else gphase[0]
        forward_model(theta[m], abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, ph, psi_r[m],
                       psi_i[m], psi_complex, all_probs, readout, True, x[0], uq[0], kbl[0], kbh[0], hs[0],
                       ws[0], out, *ftmp)
        backward_model(theta[m], abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, ph, all_probs,
                        readout, x[0], uq[0], kbl[0], kbh[0], hs[0], ws[0], gout[m], gtheta[m], gp, gxr[m],
                        gxi[m], *btmp)


@njit(**_JIT)
def backward_scratch(x, src, uq, h, depth, readout):
    """Temporaries of :func:`backward_model` (allocated once per call, shared by the models)."""
    size, b_dim, n, l_dim, a_dim = _dims(x[0], src, uq[0], h)
    return (np.empty((2, size * b_dim), dtype=x.dtype), np.empty((2, size * b_dim), dtype=x.dtype),
            np.empty((2 * l_dim, 2 * l_dim), dtype=x.dtype), np.empty((2 * a_dim, 2 * a_dim), dtype=x.dtype),
            np.empty((l_dim, l_dim), dtype=uq.dtype), np.empty((a_dim, a_dim), dtype=uq.dtype),
            np.empty((n, 2, 2), dtype=uq.dtype), np.empty((3 * depth + 2, 2, 2), dtype=uq.dtype),
            np.empty((readout.shape[1], b_dim), dtype=x.dtype), np.empty(b_dim, dtype=x.dtype))


@njit(**_JIT)
def backward_model(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase, all_probs,
                    readout, x, uq, kbl, kbh, hs, ws, gout, gtheta, gphase, gxr, gxi,
                    g, t, mm_lo, mm_hi, gk_lo, gk_hi, guq, scratch, g_t, gp_row):
    """:func:`chain_backward` of one model (every array here is that model's slice; the last ten are
    :func:`backward_scratch`). Empty ``gxr``/``gxi`` (0 rows): the input states' gradient is not
    wanted (constant inputs), and its last matrix product is skipped."""
    size, b_dim, n, l_dim, a_dim = _dims(x, src, uq, h)
    n_st = src.shape[0]
    hi_shape, lo_shape = (2 * a_dim, l_dim * b_dim), (2 * l_dim, a_dim * b_dim)
    n_out = readout.shape[1]
    want_gx = gxr.shape[0] > 0
    gtheta[:] = 0.0
    f3, g3 = x[n_st].reshape(2, size, b_dim), g.reshape(2, size, b_dim)
    if not all_probs:
        for b in range(b_dim):
            for o in range(n_out):
                g_t[o, b] = 2.0 * gout[b, o]
    for i in range(size):
        if all_probs:
            for b in range(b_dim):
                gp_row[b] = 2.0 * gout[b, i]
        else:
            for b in range(b_dim):
                gp_row[b] = 0.0
            for o in range(n_out):
                r = readout[i, o]
                g_o = g_t[o]
                for b in range(b_dim):
                    gp_row[b] += r * g_o[b]
        f_r, f_i, g_r, g_i = f3[0, i], f3[1, i], g3[0, i], g3[1, i]
        for b in range(b_dim):
            g_r[b] = gp_row[b] * f_r[b]
            g_i[b] = gp_row[b] * f_i[b]
    for s in range(n_st - 1, -1, -1):
        # y[i] = ph[j] w[j] (j = src[i]; w stored as (L, A, B)) -> G_w, as (L, A, B), in t
        g3, t3 = g.reshape(2, size, b_dim), t.reshape(2, size, b_dim)
        w3 = ws[s].reshape(2, size, b_dim) if has_phase else t3
        for i in range(size):
            j = src[s, i] if has_perm[s] else i
            o = (j % l_dim) * a_dim + j // l_dim
            if has_phase:
                gphase[s, j] = _dot_conj(g3, i, w3, o)
                _phase_rows(phase[s, j].real, -phase[s, j].imag, g3, i, t3, o)
            else:
                _copy_rows(g3, i, t3, o)
        guq[:] = 0.0
        if lo_used[s]:  # G_w (L, A, B) in t -> G_h in g
            np.dot(t.reshape(lo_shape), hs[s].reshape(lo_shape).T, mm_lo)
            _grad_k(mm_lo, gk_lo)
            _kron_back(uq[s], 0, h, gk_lo, guq)
            np.dot(kbl[s].T, t.reshape(lo_shape), g.reshape(lo_shape))
            _swap_halves(g, t, l_dim, a_dim, b_dim)  # -> (A, L, B) in t
        else:
            _swap_halves(t, g, l_dim, a_dim, b_dim)
            g, t = t, g
        if hi_used[s]:  # G of the mixed state (A, L, B) in t -> G_x in g
            np.dot(t.reshape(hi_shape), x[s].reshape(hi_shape).T, mm_hi)
            _grad_k(mm_hi, gk_hi)
            _kron_back(uq[s], h, n - h, gk_hi, guq)
            if s > 0 or want_gx:
                np.dot(kbh[s].T, t.reshape(hi_shape), g.reshape(hi_shape))
        else:
            g, t = t, g
        if lo_used[s] or hi_used[s]:
            _qubit_back(abc, theta, s, n, depth, guq, gtheta, scratch)
    if not want_gx:
        return
    g3 = g.reshape(2, size, b_dim)
    for i in range(size):
        g_r, g_i = g3[0, i], g3[1, i]
        for b in range(b_dim):
            gxr[b, i] = g_r[b]
            gxi[b, i] = g_i[b]


# --------------------------------------------------------------------------------------------------
# Whole training steps (qkd_qiskit.train_step): the chain above plus a linear head, the CE + KD loss
# and Adam, or an MLP ensemble, per model in one call. They live in this file because numba's disk
# cache is checked against the source file of the cached function only: a kernel in another file
# calling forward_model would keep running the old chain from its cache after this file changed.
# --------------------------------------------------------------------------------------------------


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
def hybrid_step(w, hw, hb, m1w, m2w, m1h, m2h, m1b, m2b, adam, slot_a, slot_off, phase_mode, const, diag_a,
                diag_off, diag_pat, const_phi, abc, depth, h, lo_used, hi_used, has_perm, src, readout, enc,
                labels, idx, t_logp, kd_on, loss_w, x, uq, kbl, kbh, hs, ws, loss_out):
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
    q, gq = np.empty((b_dim, n_out), dtype=dt), np.empty((b_dim, n_out), dtype=dt)
    gz = np.empty((b_dim, n_cls), dtype=dt)
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
def mlp_step(ws, bs, m1w, m2w, m1b, m2b, adam, x, labels, idx, t_logp, kd_on, loss_w, loss_out):
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
            start = offsets[layer + 1]
            a_out = acts[start:start + b_dim * widths[layer + 1]].reshape(b_dim, widths[layer + 1])
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
