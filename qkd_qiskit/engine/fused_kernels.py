"""Machine-code kernels of the fused stage chain (:mod:`.fused`), compiled by numba.

Everything here works on plain numpy arrays. A state is kept as two real arrays ``(2^n, B)`` (real
and imaginary parts, the batch innermost), so every inner loop is a contiguous multiply-add over
the batch that LLVM vectorises; the basis index is ``i = a * L + l`` with ``a`` the high and ``l``
the low ``h`` qubits (little-endian, as in Qiskit). Small matrices (per-qubit 2x2, the half-register
Kronecker products) are complex arrays.

Gradients follow torch's convention for a real loss: the gradient of a complex ``z = x + iy`` is
``dL/dx + i dL/dy``, so ``y = K x`` gives ``G_x = K^H G_y`` and ``G_K = G_y x^H``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["chain_backward", "chain_forward"]

_JIT = dict(cache=True, fastmath=True, nogil=True)


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
def _mix(k, xr, xi, outr, outi):
    """``out[r] = sum_c K[r, c] x[c]``: rows of the state ``(dim, R)`` mixed by ``K (dim, dim)``.

    Two output rows per pass over the input rows (each loaded value feeds 8 multiply-adds):
    1.3x faster than one row per pass at 6 qubits."""
    dim, width = xr.shape
    for r in range(0, dim - 1, 2):
        o1r, o1i, o2r, o2i = outr[r], outi[r], outr[r + 1], outi[r + 1]
        for b in range(width):
            o1r[b] = 0.0
            o1i[b] = 0.0
            o2r[b] = 0.0
            o2i[b] = 0.0
        for c in range(dim):
            ar, ai = k[r, c].real, k[r, c].imag
            br, bi = k[r + 1, c].real, k[r + 1, c].imag
            sr, si = xr[c], xi[c]
            for b in range(width):
                x1, x2 = sr[b], si[b]
                o1r[b] += ar * x1 - ai * x2
                o1i[b] += ar * x2 + ai * x1
                o2r[b] += br * x1 - bi * x2
                o2i[b] += br * x2 + bi * x1
    if dim % 2:
        r = dim - 1
        orr, oi = outr[r], outi[r]
        for b in range(width):
            orr[b] = 0.0
            oi[b] = 0.0
        for c in range(dim):
            kr, ki = k[r, c].real, k[r, c].imag
            sr, si = xr[c], xi[c]
            for b in range(width):
                orr[b] += kr * sr[b] - ki * si[b]
                oi[b] += kr * si[b] + ki * sr[b]


@njit(**_JIT)
def _mix_back(k, gr, gi, xr, xi, gxr, gxi, gk):
    """Backward of :func:`_mix`: ``G_K[r, c] = G_out[r] . conj(x[c])``, ``G_x = K^H G_out``."""
    dim, width = xr.shape
    for r in range(dim):
        g_r, g_i = gr[r], gi[r]
        for c in range(0, dim - 1, 2):
            s1r, s1i, s2r, s2i = xr[c], xi[c], xr[c + 1], xi[c + 1]
            a1r = g_r[0] * 0
            a1i = g_r[0] * 0
            a2r = g_r[0] * 0
            a2i = g_r[0] * 0
            for b in range(width):
                u, v = g_r[b], g_i[b]
                a1r += u * s1r[b] + v * s1i[b]
                a1i += v * s1r[b] - u * s1i[b]
                a2r += u * s2r[b] + v * s2i[b]
                a2i += v * s2r[b] - u * s2i[b]
            gk[r, c] = a1r + 1j * a1i
            gk[r, c + 1] = a2r + 1j * a2i
        if dim % 2:
            c = dim - 1
            s_r, s_i = xr[c], xi[c]
            accr = g_r[0] * 0
            acci = g_r[0] * 0
            for b in range(width):
                accr += g_r[b] * s_r[b] + g_i[b] * s_i[b]
                acci += g_i[b] * s_r[b] - g_r[b] * s_i[b]
            gk[r, c] = accr + 1j * acci
    _mix(np.conj(k).T.copy(), gr, gi, gxr, gxi)


@njit(**_JIT)
def _swap_halves(xr, xi, outr, outi, d1, d2, b_dim):
    """``out[j, i] = x[i, j]`` for a state ``(d1, d2, B)`` (flat ``(d1 * d2 * B)``)."""
    x2r, x2i = xr.reshape(d1 * d2, b_dim), xi.reshape(d1 * d2, b_dim)
    o2r, o2i = outr.reshape(d1 * d2, b_dim), outi.reshape(d1 * d2, b_dim)
    for i in range(d1):
        for j in range(d2):
            _copy_row(x2r[i * d2 + j], x2i[i * d2 + j], o2r[j * d1 + i], o2i[j * d1 + i])


@njit(**_JIT)
def _copy_row(sr, si, dr, di):
    for b in range(sr.shape[0]):
        dr[b] = sr[b]
        di[b] = si[b]


@njit(**_JIT)
def _dot_conj(gr, gi, sr, si):
    """``sum_b g[b] conj(s[b])`` of two complex rows."""
    accr = gr[0] * 0
    acci = gr[0] * 0
    for b in range(gr.shape[0]):
        accr += gr[b] * sr[b] + gi[b] * si[b]
        acci += gi[b] * sr[b] - gr[b] * si[b]
    return accr + 1j * acci


@njit(**_JIT)
def _phase_row(pr, pi, sr, si, dr, di):
    """``d = (pr + i pi) s`` on one row."""
    for b in range(sr.shape[0]):
        dr[b] = pr * sr[b] - pi * si[b]
        di[b] = pr * si[b] + pi * sr[b]


@njit(**_JIT)
def chain_forward(theta, abc, depth, h, lo_used, hi_used, has_perm, src, has_phase, phase,
                  psi_r, psi_i, psi_complex, all_probs, readout, xr, xi, uq, klo, khi, hr, hi_, wr, wi, out):
    """All stages of all models, then ``|psi|^2`` times the read-out table.

    In: ``theta`` (M, slots) half angles; ``abc`` (3, slots, 2, 2); ``lo_used``/``hi_used``/
    ``has_perm`` (S,); ``src`` (S, N) (``y[i] = v[src[i]]``); ``phase`` (M, S, N) complex (read
    if ``has_phase``); the input states ``psi_r``/``psi_i`` (M, B, N) (``psi_i`` read only if
    ``psi_complex``); ``readout`` (N, n_out). Out: ``out`` (M, B, n_out), or the probabilities
    (M, B, N) if ``all_probs`` (``readout`` unused).

    A stage is ``y = P D (K_hi (x) K_lo) x``. The state enters as ``(A, L, B)`` rows ``a L + l``;
    ``K_hi`` mixes its ``A`` rows of length ``L B``; the result is stored as ``(L, A, B)`` (``h``)
    so that ``K_lo`` mixes ``L`` rows of length ``A B`` (``w``; the two halves commute); the
    phase and the permutation read it back into ``(A, L, B)``. Every inner loop runs over a
    contiguous row of ``2^n B / 2^h`` numbers. Written: ``x[:, s]`` (entering stage s), ``h``,
    ``w`` (only with phases), ``uq`` (M, S, n, 2, 2), ``klo``/``khi`` (the states are
    ``(M, S (+ 1), N B)``).
    """
    m_dim, n_st, size = xr.shape[0], src.shape[0], src.shape[1]
    b_dim = xr.shape[2] // size
    n = uq.shape[2]
    l_dim = 1 << h
    a_dim = size // l_dim
    scratch = np.empty((2, 2, 2), dtype=uq.dtype)
    t_r = np.empty(size * b_dim, dtype=xr.dtype)
    t_i = np.empty(size * b_dim, dtype=xr.dtype)
    v_r = np.empty(size * b_dim, dtype=xr.dtype)
    v_i = np.empty(size * b_dim, dtype=xr.dtype)
    n_out = readout.shape[1]
    acc = np.empty((n_out, b_dim), dtype=xr.dtype)
    p_row = np.empty(b_dim, dtype=xr.dtype)
    for m in range(m_dim):
        x0r, x0i = xr[m, 0], xi[m, 0]
        for i in range(size):
            for b in range(b_dim):
                x0r[i * b_dim + b] = psi_r[m, b, i]
                x0i[i * b_dim + b] = psi_i[m, b, i] if psi_complex else 0.0
        for s in range(n_st):
            _qubit_mats(abc, theta[m], s, n, depth, uq[m, s], scratch)
            x_r, x_i = xr[m, s], xi[m, s]
            if hi_used[s]:
                _kron(uq[m, s], h, n - h, khi[m, s])
                _mix(khi[m, s], x_r.reshape(a_dim, l_dim * b_dim), x_i.reshape(a_dim, l_dim * b_dim),
                     t_r.reshape(a_dim, l_dim * b_dim), t_i.reshape(a_dim, l_dim * b_dim))
                _swap_halves(t_r, t_i, hr[m, s], hi_[m, s], a_dim, l_dim, b_dim)
            else:
                _swap_halves(x_r, x_i, hr[m, s], hi_[m, s], a_dim, l_dim, b_dim)
            if lo_used[s]:
                w_r, w_i = (wr[m, s], wi[m, s]) if has_phase else (v_r, v_i)
                _kron(uq[m, s], 0, h, klo[m, s])
                _mix(klo[m, s], hr[m, s].reshape(l_dim, a_dim * b_dim), hi_[m, s].reshape(l_dim, a_dim * b_dim),
                     w_r.reshape(l_dim, a_dim * b_dim), w_i.reshape(l_dim, a_dim * b_dim))
            else:
                w_r, w_i = hr[m, s], hi_[m, s]
                if has_phase:
                    wr[m, s, :] = w_r
                    wi[m, s, :] = w_i
            w2r, w2i = w_r.reshape(size, b_dim), w_i.reshape(size, b_dim)
            y2r, y2i = xr[m, s + 1].reshape(size, b_dim), xi[m, s + 1].reshape(size, b_dim)
            for i in range(size):
                j = src[s, i] if has_perm[s] else i
                o = (j % l_dim) * a_dim + j // l_dim
                if has_phase:
                    _phase_row(phase[m, s, j].real, phase[m, s, j].imag, w2r[o], w2i[o], y2r[i], y2i[i])
                else:
                    _copy_row(w2r[o], w2i[o], y2r[i], y2i[i])
        f_r, f_i = xr[m, n_st], xi[m, n_st]
        if all_probs:
            for i in range(size):
                for b in range(b_dim):
                    out[m, b, i] = f_r[i * b_dim + b] * f_r[i * b_dim + b] + f_i[i * b_dim + b] * f_i[i * b_dim + b]
            continue
        acc[:] = 0.0
        for i in range(size):
            d = i * b_dim
            for b in range(b_dim):
                p_row[b] = f_r[d + b] * f_r[d + b] + f_i[d + b] * f_i[d + b]
            for o in range(n_out):
                r = readout[i, o]
                a_o = acc[o]
                for b in range(b_dim):
                    a_o[b] += r * p_row[b]
        for b in range(b_dim):
            for o in range(n_out):
                out[m, b, o] = acc[o, b]


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
                   all_probs, readout, xr, xi, uq, klo, khi, hr, hi_, wr, wi, gout, gtheta, gphase, gxr, gxi):
    """Backward of :func:`chain_forward` for ``gout`` (M, B, n_out) (or (M, B, N) if ``all_probs``).

    Writes ``gtheta`` (M, slots), ``gphase`` (M, S, N) (with phases) and the input states'
    gradient ``gxr``/``gxi`` (M, B, N)."""
    m_dim, n_st, size = xr.shape[0], src.shape[0], src.shape[1]
    b_dim = xr.shape[2] // size
    n = uq.shape[2]
    l_dim = 1 << h
    a_dim = size // l_dim
    g_r = np.empty(size * b_dim, dtype=xr.dtype)
    g_i = np.empty(size * b_dim, dtype=xr.dtype)
    t_r = np.empty(size * b_dim, dtype=xr.dtype)
    t_i = np.empty(size * b_dim, dtype=xr.dtype)
    gk_lo = np.empty((l_dim, l_dim), dtype=klo.dtype)
    gk_hi = np.empty((a_dim, a_dim), dtype=khi.dtype)
    guq = np.empty((n, 2, 2), dtype=uq.dtype)
    scratch = np.empty((3 * depth + 2, 2, 2), dtype=uq.dtype)
    lo_rows, hi_rows = (l_dim, a_dim * b_dim), (a_dim, l_dim * b_dim)
    n_out = readout.shape[1]
    g_t = np.empty((n_out, b_dim), dtype=xr.dtype)
    gp_row = np.empty(b_dim, dtype=xr.dtype)
    for m in range(m_dim):
        gtheta[m] = 0.0
        f_r, f_i = xr[m, n_st], xi[m, n_st]
        if all_probs:
            for i in range(size):
                for b in range(b_dim):
                    gp_row[b] = gout[m, b, i]
                for b in range(b_dim):
                    g_r[i * b_dim + b] = 2.0 * gp_row[b] * f_r[i * b_dim + b]
                    g_i[i * b_dim + b] = 2.0 * gp_row[b] * f_i[i * b_dim + b]
        else:
            for b in range(b_dim):
                for o in range(n_out):
                    g_t[o, b] = 2.0 * gout[m, b, o]
            for i in range(size):
                d = i * b_dim
                for b in range(b_dim):
                    gp_row[b] = 0.0
                for o in range(n_out):
                    r = readout[i, o]
                    g_o = g_t[o]
                    for b in range(b_dim):
                        gp_row[b] += r * g_o[b]
                for b in range(b_dim):
                    g_r[d + b] = gp_row[b] * f_r[d + b]
                    g_i[d + b] = gp_row[b] * f_i[d + b]
        for s in range(n_st - 1, -1, -1):
            # y[i] = ph[j] w[j] (j = src[i], w stored as (L, A, B)) -> G_w in (L, A, B): t
            g2r, g2i = g_r.reshape(size, b_dim), g_i.reshape(size, b_dim)
            t2r, t2i = t_r.reshape(size, b_dim), t_i.reshape(size, b_dim)
            for i in range(size):
                j = src[s, i] if has_perm[s] else i
                o = (j % l_dim) * a_dim + j // l_dim
                if has_phase:
                    pr, pi = phase[m, s, j].real, phase[m, s, j].imag
                    w_r, w_i = wr[m, s].reshape(size, b_dim)[o], wi[m, s].reshape(size, b_dim)[o]
                    gphase[m, s, j] = _dot_conj(g2r[i], g2i[i], w_r, w_i)
                    _phase_row(pr, -pi, g2r[i], g2i[i], t2r[o], t2i[o])
                else:
                    _copy_row(g2r[i], g2i[i], t2r[o], t2i[o])
            guq[:] = 0.0
            if lo_used[s]:  # G_h (L, A, B) -> g
                _mix_back(klo[m, s], t_r.reshape(lo_rows), t_i.reshape(lo_rows), hr[m, s].reshape(lo_rows),
                          hi_[m, s].reshape(lo_rows), g_r.reshape(lo_rows), g_i.reshape(lo_rows), gk_lo)
                _kron_back(uq[m, s], 0, h, gk_lo, guq)
                _swap_halves(g_r, g_i, t_r, t_i, l_dim, a_dim, b_dim)  # -> (A, L, B) in t
            else:
                g_r[:] = t_r
                g_i[:] = t_i
                _swap_halves(g_r, g_i, t_r, t_i, l_dim, a_dim, b_dim)
            if hi_used[s]:  # G of the mixed state (A, L, B) in t -> G_x in g
                _mix_back(khi[m, s], t_r.reshape(hi_rows), t_i.reshape(hi_rows), xr[m, s].reshape(hi_rows),
                          xi[m, s].reshape(hi_rows), g_r.reshape(hi_rows), g_i.reshape(hi_rows), gk_hi)
                _kron_back(uq[m, s], h, n - h, gk_hi, guq)
            else:
                g_r[:] = t_r
                g_i[:] = t_i
            if lo_used[s] or hi_used[s]:
                _qubit_back(abc, theta[m], s, n, depth, guq, gtheta[m], scratch)
        for i in range(size):
            for b in range(b_dim):
                gxr[m, b, i] = g_r[i * b_dim + b]
                gxi[m, b, i] = g_i[i * b_dim + b]
