"""Fuse the channels of the weight part into two-qubit blocks, as compile-time tables.

Applying one small matrix per ISA instruction (~300 for a 6-qubit student) to every propagated
observable would dominate a training step, so consecutive channels are fused: each two-qubit
channel makes a *unit* with the one-qubit channels before it (only at the start of the circuit) and
after it, until the next two-qubit channel on that qubit (they commute with everything in between,
which acts on other qubits); consecutive units on the same pair, with nothing else on either qubit
in between, form one *block* (a routed swap's three ``cz`` are one block: 59 two-qubit channels
become 34 blocks in hea's weight part on FakeKingston). A qubit that no two-qubit channel touches
gets a block paired with a neighbour (identity there). Trainable angles make most blocks
per-model, so a block is stored as its factors and multiplied at run time
(:mod:`.program`): a unit is ``(post_hi x post_lo) . mid . (pre_hi x pre_lo)``, each ``pre``/``post``
a product of 4x4 one-qubit channels (a *segment*), ``mid`` the 16x16 two-qubit channel; blocks
always act on ``(lo, hi)`` with ``lo < hi`` (local index ``p_lo + 4 p_hi``).

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit_aer.noise import NoiseModel
    >>> from .channels import ErrorTable, circuit_channels
    >>> qc = QuantumCircuit(3); _ = qc.sx(0); _ = qc.cz(1, 0); _ = qc.sx(0); _ = qc.sx(2); _ = qc.cz(1, 2)
    >>> tables = fuse_blocks(circuit_channels(qc, [], ErrorTable(NoiseModel())), n_qubits=3)
    >>> tables.pairs.tolist(), len(tables.segments), tables.chains.tolist()
    ([[0, 1], [1, 2]], 8, [[0], [1]])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .channels import Channel

_SWAP16 = np.eye(16)[[(i % 4) * 4 + i // 4 for i in range(16)]]
"""Permutation of a two-qubit Pauli index exchanging the two qubits."""


@dataclass
class _Unit:
    pair: tuple[int, int]
    pre: dict[int, list[int]]
    mid: int | None
    post: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class BlockTables:
    """Compile-time (numpy) tables of the fused weight part.

    ``one``/``two``: stacked ``(B, C, S)`` of the one-qubit (4x4) and two-qubit (16x16) channels,
    a trailing identity entry in each (padding / no mid); ``one_angle``/``two_angle``: the angle
    row of each (``-1``: fixed); ``coef (A, n_weights)``, ``offset (A,)``: the affine angles;
    ``segments``: per segment the one-qubit channel indices in time order; ``pairs (n_blocks, 2)``
    ``(lo, hi)``; ``pre``/``post (n_units, 2)``: segment of lo and hi of each *unit* (one two-qubit
    channel with the one-qubit channels around it), ``mid (n_units,)``; ``chains (n_blocks, L)``:
    the units of each block in time order, padded with ``n_units`` (identity).
    """

    one: np.ndarray
    one_angle: np.ndarray
    two: np.ndarray
    two_angle: np.ndarray
    coef: np.ndarray
    offset: np.ndarray
    segments: list[list[int]]
    pairs: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    mid: np.ndarray
    chains: np.ndarray


def _partner(q: int, n_qubits: int) -> int:
    return q + 1 if q + 1 < n_qubits else q - 1


def _group(channels: Sequence[Channel], n_qubits: int) -> list[list[_Unit]]:
    """Units (one two-qubit channel each), chained into blocks: a unit joins the block of its pair
    when nothing else touched either qubit since (the three ``cz`` of a routed swap are one block)."""
    blocks: list[list[_Unit]] = []
    open_block: dict[int, list[_Unit]] = {}
    pending: dict[int, list[int]] = {q: [] for q in range(n_qubits)}
    for i, ch in enumerate(channels):
        if len(ch.qubits) == 1:
            q = ch.qubits[0]
            if q in open_block:
                open_block[q][-1].post.setdefault(q, []).append(i)
            else:
                pending[q].append(i)
            continue
        lo, hi = sorted(ch.qubits)
        unit = _Unit((lo, hi), {lo: pending[lo], hi: pending[hi]}, i)
        pending[lo], pending[hi] = [], []
        block = open_block.get(lo)
        if block is not None and block is open_block.get(hi):
            block.append(unit)
        else:
            blocks.append([unit])
            open_block[lo] = open_block[hi] = blocks[-1]
    for q, ops in pending.items():
        if ops:  # a qubit no two-qubit channel touched
            blocks.append([_Unit(tuple(sorted((q, _partner(q, n_qubits)))), {q: ops}, None)])
    return blocks


def _stack(channels: Sequence[Channel], which: dict[int, int], size: int, swap: set[int]) -> np.ndarray:
    """``(n + 1, 3, size, size)``: ``B, C, S`` of channels ``which`` (channel -> row), two-qubit ones in
    ``swap`` with their qubits exchanged, and a trailing identity."""
    mats = np.zeros((len(which) + 1, 3, size, size))
    for i, j in which.items():
        ch = channels[i]
        for t, m in enumerate((ch.b, ch.c, ch.s)):
            mats[j, t] = _SWAP16 @ m @ _SWAP16 if i in swap else m
    mats[-1, 0] = np.eye(size)
    return mats


def _angle_rows(which: dict[int, int], angle_row: dict[int, int]) -> np.ndarray:
    """The angle row of each channel of ``which`` in row order (``-1``: fixed), plus one for the identity."""
    return np.array([angle_row.get(i, -1) for i in sorted(which, key=which.get)] + [-1], dtype=np.int64)


def _chains(blocks: list[list[_Unit]], n_units: int) -> np.ndarray:
    """The unit indices of each block, padded with ``n_units`` (identity)."""
    chains = np.full((len(blocks), max((len(b) for b in blocks), default=0)), n_units, dtype=np.int64)
    start = 0
    for j, b in enumerate(blocks):
        chains[j, :len(b)] = range(start, start + len(b))
        start += len(b)
    return chains


def fuse_blocks(channels: Sequence[Channel], n_qubits: int) -> BlockTables:
    """Group ``channels`` (circuit order) into blocks and build their :class:`BlockTables`."""
    if n_qubits < 2:
        raise ValueError("fuse_blocks: noisy simulation needs at least 2 active qubits")
    one_idx = {i: j for j, i in enumerate(i for i, ch in enumerate(channels) if len(ch.qubits) == 1)}
    two_idx = {i: j for j, i in enumerate(i for i, ch in enumerate(channels) if len(ch.qubits) == 2)}
    angled = [i for i, ch in enumerate(channels) if ch.coef is not None]
    angle_row = {i: a for a, i in enumerate(angled)}
    n_w = len(channels[angled[0]].coef) if angled else 0
    blocks = _group(channels, n_qubits)
    units = [u for b in blocks for u in b]
    swapped = {u.mid for u in units if u.mid is not None and channels[u.mid].qubits[0] > channels[u.mid].qubits[1]}
    segments: list[list[int]] = []

    def segment(ops: list[int]) -> int:
        segments.append([one_idx[i] for i in ops])
        return len(segments) - 1

    pre = np.array([[segment(u.pre.get(q, [])) for q in u.pair] for u in units], dtype=np.int64).reshape(-1, 2)
    post = np.array([[segment(u.post.get(q, [])) for q in u.pair] for u in units], dtype=np.int64).reshape(-1, 2)
    return BlockTables(
        one=_stack(channels, one_idx, 4, set()), one_angle=_angle_rows(one_idx, angle_row),
        two=_stack(channels, two_idx, 16, swapped), two_angle=_angle_rows(two_idx, angle_row),
        coef=np.array([channels[i].coef for i in angled]).reshape(len(angled), n_w),
        offset=np.array([channels[i].offset for i in angled]), segments=segments,
        pairs=np.array([b[0].pair for b in blocks], dtype=np.int64).reshape(-1, 2), pre=pre, post=post,
        mid=np.array([len(two_idx) if u.mid is None else two_idx[u.mid] for u in units], dtype=np.int64),
        chains=_chains(blocks, len(units)))
