"""Run time of noisy simulation: :class:`BlockProgram`, the fused blocks (:mod:`.blocks`) of a circuit
part built per model (or per sample) in torch, differentiable by autograd, applied in either picture.

*Heisenberg* (the weight part, every training step):
A read-out ``<O>`` of the state ``r_x`` left by the input part is ``o . R_L ... R_1 r_x``. Instead
of pushing each of the ``M x B`` sample states forwards through the weight part, the few read-out
observables (``K`` = 6 ``Z_q`` for a 6-qubit hea, ``2^k - 1`` Z-strings for probability read-outs)
are pulled backwards once per model, ``o' = R_1^T ... R_L^T o``, and every sample is then one dot
product ``o' . r_x``: the step costs ``M K`` propagated vectors instead of ``M B``, independent of
the batch size. Each block (:mod:`.blocks`) is built per model from its factors in a few
vectorised ops (all cos/sin at once, segments multiplied along their padded length), then applied
as one batched 16x16 contraction on the ``(M, K, 4^k)`` observables.

*Schrödinger* (the input part, once per data split, :mod:`.embedding`): the same blocks built per
sample from its input angles push ``|0..0>`` forwards, chunked over samples.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit_aer.noise import NoiseModel
    >>> from .blocks import fuse_blocks
    >>> from .channels import ErrorTable, circuit_channels
    >>> w = Parameter("w"); qc = QuantumCircuit(2); _ = qc.sx(0); _ = qc.rz(w, 0); _ = qc.cz(0, 1)
    >>> prog = BlockProgram(fuse_blocks(circuit_channels(qc, [w], ErrorTable(NoiseModel())), 2), 2,
    ...                     [[0], [1]], torch.float64)                       # read <Z_0>, <Z_1>
    >>> start = torch.zeros(1, 1, 16, dtype=torch.float64)
    >>> start[..., [0, 3, 12, 15]] = 1                                        # |00>: I, Z_0, Z_1, Z_0 Z_1
    >>> prog(start, torch.tensor([[0.0]], dtype=torch.float64)).flatten().tolist()  # sx turned qubit 0
    [0.0, 1.0]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .blocks import BlockTables


def z_string_index(qubits: Sequence[int]) -> int:
    """Pauli index of ``Z`` on ``qubits`` (identity elsewhere)."""
    return sum(3 * 4**q for q in qubits)


class BlockProgram:
    """The fused blocks of one circuit part, for a dtype/device; ``observables``: one list of qubits
    per Z-string read-out (Heisenberg picture only)."""

    def __init__(self, tables: BlockTables, n_qubits: int, observables: Sequence[Sequence[int]],
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        self.chains = torch.as_tensor(tables.chains, dtype=torch.long, device=device)
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)
        i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)
        self.n_qubits, self.dtype = n_qubits, dtype
        self.one, self.two = f(tables.one), f(tables.two)
        self.one_angle, self.two_angle = i(tables.one_angle), i(tables.two_angle)
        self.two_fixed = bool((np.asarray(tables.two_angle) < 0).all())
        self.coef, self.offset = f(tables.coef), f(tables.offset)
        n_one = tables.one.shape[0] - 1
        length = max((len(s) for s in tables.segments), default=0)
        self.segments = i([s + [n_one] * (length - len(s)) for s in tables.segments]).reshape(len(tables.segments), length)
        self.pairs = [tuple(int(q) for q in p) for p in tables.pairs]
        self.pre, self.post, self.mid = i(tables.pre), i(tables.post), i(tables.mid)
        obs = torch.zeros(len(observables), 4**n_qubits, dtype=dtype, device=device)
        for k, qubits in enumerate(observables):
            obs[k, z_string_index(qubits)] = 1.0
        self.observables = obs

    def _channels(self, mats: torch.Tensor, rows: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """``B + cos C + sin S`` of every channel, per model: ``(M, n, d, d)``."""
        c, s = cos[:, rows, None, None], sin[:, rows, None, None]
        return mats[:, 0] + c * mats[:, 1] + s * mats[:, 2]

    def blocks(self, params: torch.Tensor) -> torch.Tensor:
        """Every block's PTM per model (or sample) of ``params (M, n_params)``: ``(M, n_blocks, 16, 16)``."""
        m = params.shape[0]
        theta = torch.cat([params @ self.coef.T + self.offset, params.new_zeros(m, 1)], dim=1)
        cos, sin = torch.cos(theta), torch.sin(theta)
        one = self._channels(self.one, self.one_angle, cos, sin)
        seg = one[:, self.segments]  # (M, n_seg, L, 4, 4)
        prod = seg[:, :, 0] if seg.shape[2] else one[:, -1:].expand(m, len(self.segments), 4, 4)
        for step in range(1, seg.shape[2]):
            prod = seg[:, :, step] @ prod
        if self.two_fixed:  # no angle on any two-qubit gate (every cz / ecr): the constant matrices, not M copies
            mid = self.two[self.mid, 0].expand(m, -1, -1, -1)
        else:
            mid = self._channels(self.two, self.two_angle, cos, sin)[:, self.mid]
        kron = lambda idx: torch.einsum("mnij,mnkl->mnikjl", prod[:, idx[:, 1]], prod[:, idx[:, 0]]).reshape(
            m, len(idx), 16, 16)
        units = kron(self.post) @ mid @ kron(self.pre)
        units = torch.cat([units, torch.eye(16, dtype=units.dtype, device=units.device).expand(m, 1, 16, 16)], 1)
        chain = units[:, self.chains[:, 0]]
        for step in range(1, self.chains.shape[1]):
            chain = units[:, self.chains[:, step]] @ chain
        return chain

    def _sweep(self, v: torch.Tensor, blocks: torch.Tensor, order: range, transpose: bool) -> torch.Tensor:
        """Apply blocks ``order`` (``transpose``: ``R^T``, the Heisenberg step) to vectors ``(M, V, 4^k)``.

        The vectors are kept as ``(M, 4, .., 4, V)`` with a moving qubit order: each block first brings
        its pair ``(hi, lo)`` to the front (the one copy of the step), then is one batched matmul
        ``(M, 16, 16) @ (M, 16, rest)``; one final permute restores the Pauli index order. Letting
        ``einsum`` contract the pair in place instead copied twice per block and was ~1.6x slower.
        """
        m, n_vec, k = v.shape[0], v.shape[1], self.n_qubits
        qubits = [k - 1 - j for j in range(k)]  # qubit of each axis after M (C order: qubit k-1 first)
        t = v.reshape(m, n_vec, *([4] * k)).movedim(1, -1)
        for b in order:
            lo, hi = self.pairs[b]
            new = [hi, lo] + [q for q in qubits if q not in (lo, hi)]
            t = t.permute(0, *[1 + qubits.index(q) for q in new], k + 1).reshape(m, 16, -1)
            r = blocks[:, b].transpose(1, 2) if transpose else blocks[:, b]
            t = torch.bmm(r, t).reshape(m, *([4] * k), n_vec)
            qubits = new
        canonical = [k - 1 - j for j in range(k)]
        return t.permute(0, k + 1, *[1 + qubits.index(q) for q in canonical]).reshape(m, n_vec, 4**k)

    def apply(self, vectors: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        """Vectors ``(M, V, 4^k)`` pushed through given block matrices ``(M, n_blocks, 16, 16)``
        (Schrödinger; e.g. blocks assembled by the caller from shared and per-sample ones)."""
        return self._sweep(vectors, blocks, range(len(self.pairs)), transpose=False)

    def propagate(self, weights: torch.Tensor, observables: torch.Tensor | None = None) -> torch.Tensor:
        """The observables pulled back through the part (Heisenberg, ``o' = R^T o``): ``(M, K, 4^k)``;
        ``observables (M, K', 4^k)`` replace the program's own (any real combinations of Paulis)."""
        o = self.observables.unsqueeze(0).expand(weights.shape[0], -1, -1) if observables is None else observables
        return self._sweep(o, self.blocks(weights), range(len(self.pairs) - 1, -1, -1), transpose=True)

    def evolve(self, states: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """States ``(M, V, 4^k)`` pushed through the part (Schrödinger, ``r' = R r``), ``params (M, n_params)``."""
        return self._sweep(states, self.blocks(params), range(len(self.pairs)), transpose=False)

    def __call__(self, states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``(M, B, K)`` of the observables on Pauli vectors ``states (M, B, 4^k)``."""
        return states @ self.propagate(weights).transpose(1, 2)
