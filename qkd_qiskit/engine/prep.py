"""State preparation: the leading product-form gates, read at compile time and computed in one
gather + product at run time.

A leading run of RY / multiplexed-RY (``mux_ry``) / real constant 1-qubit gates whose target is
still ``|0>`` (the amplitude-embedding tree) makes every basis amplitude a *product* of cos/sin
factors: ``amp[i] = prod_k factor_k(i)``. :func:`prep_index` tabulates which factor each amplitude
takes, :func:`prep_state` evaluates it for all samples at once (real arithmetic).

Example:
    >>> from qkd_qiskit.engine.atoms import Affine, Rot
    >>> atoms = [Rot(0, "Y", Affine(((0, 1.0),), 0.0)), Rot(0, "X", Affine((), 0.3))]
    >>> prep, used = consume_prep(atoms)
    >>> used, prep.touched, len(prep.slots)         # the RX acts on a touched qubit: prep ends
    (1, [0], 1)
    >>> prep_index(prep, Layout(1)).tolist()        # amp[0] = cos(slot 0), amp[1] = sin(slot 0)
    [[0], [1]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from .angle_maps import apply_map
from .atoms import Affine, Const1, Measure, Mux, Rot, check_not_measured
from .layout import Layout

__all__ = ["Prep", "consume_prep", "prep_index", "prep_state"]

_ATOL = 1e-12


@dataclass
class Prep:
    """Leading product-form gates on fresh qubits: ``amp[i] = prod_k factor_k(i)``."""

    slots: list[Affine] = field(default_factory=list)  # rotation angles (cos/sin factors)
    consts: list[float] = field(default_factory=list)  # constant factors
    factors: list[tuple[Any, int]] = field(default_factory=list)  # (atom, first slot or const)
    touched: list[int] = field(default_factory=list)


def consume_prep(atoms: list[Any]) -> tuple[Prep, int]:
    """Leading RY / mux_ry / real constant 1-qubit gates whose target is still |0>; also how many
    atoms (measurements included) they span."""
    prep, touched, pos = Prep(), set(), 0
    measured: set[int] = set()
    for atom in atoms:
        if isinstance(atom, Measure):
            measured.add(atom.q)
        elif isinstance(atom, Mux) and atom.target not in touched:
            prep.factors.append((atom, len(prep.slots)))
            prep.slots.extend(atom.angles)
        elif isinstance(atom, Rot) and atom.axis == "Y" and atom.q not in touched:
            prep.factors.append((Mux(atom.q, (), [atom.angle]), len(prep.slots)))
            prep.slots.append(atom.angle)
        elif (isinstance(atom, Const1) and atom.q not in touched
              and np.allclose(atom.mat[:, 0].imag, 0, atol=_ATOL)):
            prep.factors.append((atom, len(prep.consts)))
            prep.consts.extend(atom.mat[:, 0].real.tolist())
        else:
            break
        if not isinstance(atom, Measure):
            check_not_measured(atom, measured)
            touched.add(atom.target if isinstance(atom, Mux) else atom.q)
        pos += 1
    prep.touched = sorted(touched)
    return prep, pos


def prep_index(prep: Prep, lay: Layout) -> np.ndarray:
    """Gather index (2^n, K) into the table ``[cos(slots), sin(slots), consts, 0, 1]``."""
    n_s, n_c = len(prep.slots), len(prep.consts)
    zero, one = 2 * n_s + n_c, 2 * n_s + n_c + 1
    k = max(1, len(prep.factors))
    idx = np.full((2**lay.n, k), one, dtype=np.int64)
    untouched = [q for q in range(lay.n) if q not in prep.touched]
    outside = lay.bits[:, untouched].any(axis=1) if untouched else np.zeros(2**lay.n, bool)
    earlier: set[int] = set()
    for f, (atom, base) in enumerate(prep.factors):
        if isinstance(atom, Mux):  # control state over the controls prepared so far (others are |0>)
            mask = sum(1 << j for j, q in enumerate(atom.controls) if q in earlier)
            c = lay.local_index(atom.controls) & mask
            idx[:, f] = base + c + n_s * lay.bits[:, atom.target]
            earlier.add(atom.target)
        else:
            idx[:, f] = 2 * n_s + base + lay.bits[:, atom.q]
            earlier.add(atom.q)
    idx[outside] = one
    idx[outside, 0] = zero
    return idx


def prep_state(t: SimpleNamespace, bt: SimpleNamespace, angles: torch.Tensor, weights: torch.Tensor,
               n: int, h: int) -> torch.Tensor:
    """Product-form prep: one gather + product over the factors (real), layout (M, A, B, L).

    ``t``/``bt``: the torch tables of :mod:`.tables` (``prep_consts``, ``prep_map``, ``prep_idx``
    and the batch's gather index ``bt.prep``)."""
    m, b = angles.shape[0], angles.shape[1]
    consts = t.prep_consts.expand(m, b, -1)
    if t.prep_map.n:
        theta = apply_map(t.prep_map, angles, weights, per_sample=True).expand(m, b, -1)
        consts = torch.cat([torch.cos(theta), torch.sin(theta), consts], -1)
    lo = 2**h
    k = t.prep_idx.shape[1]
    gathered = consts.reshape(m, -1).index_select(1, bt.prep)
    gathered = gathered.view(m, 2**n // lo, b, lo, k)
    return gathered[..., 0] if k == 1 else gathered.prod(-1)
