"""Stage scheduling: atoms -> state preparation, then a list of fused stages and mux ops.

After the product-form prep (:mod:`.prep`), the atoms are cut into stages ``U = P . D . L``: ``L`` a
tensor product of per-qubit 2x2 matrices (runs of 1-qubit gates), ``D`` a diagonal phase (RZ, RZZ,
CP, CZ, ... merged), ``P`` a constant basis permutation (CX chains, SWAP, X, ...). A stage depends
either on weights only (built once per model) or on inputs (built per sample); a general ``mux_ry``
after the prep is its own op.

Example:
    >>> from qkd_qiskit.engine.atoms import Affine, Diag, Rot
    >>> w = Affine(((1, 1.0),), 0.0)                     # joint index 1: a weight (1 input)
    >>> atoms = [Rot(0, "X", w), Diag((0, 1), w, np.array([-0.5, 0.5, 0.5, -0.5])), Rot(1, "X", w)]
    >>> prep, ops, clbits = schedule(atoms, n_qubits=2, n_inputs=1)
    >>> len(prep.factors), len(ops), ops[0].per_sample, sorted(ops[0].local)
    (0, 2, False, [0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .atoms import (
    Affine,
    Const1,
    Diag,
    Measure,
    Mono,
    Mux,
    Rot,
    atom_params,
    check_not_measured,
    monomial,
)
from .layout import Layout
from .prep import Prep, consume_prep

__all__ = ["Stage", "schedule", "stage_add"]


@dataclass
class Stage:
    """``U = P . D . L`` with L per-qubit 2x2 products, D diagonal phases, P a basis permutation."""

    n: int
    per_sample: bool | None = None  # None while only constant gates were added
    local: dict[int, list[Any]] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    diag_terms: list[tuple[Affine, np.ndarray]] = field(default_factory=list)
    const_phase: np.ndarray | None = None
    src: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.const_phase = np.zeros(2**self.n)
        self.src = np.arange(2**self.n)


def stage_add(stage: Stage, atom: Any, lay: Layout) -> bool:
    """Add ``atom`` at the end of ``stage`` if the P.D.L form allows it; returns success."""
    if isinstance(atom, (Rot, Const1)):
        if atom.q not in stage.closed:
            stage.local.setdefault(atom.q, []).append(atom)
            return True
        if isinstance(atom, Rot):
            if atom.axis != "Z":
                return False
            return stage_add(stage, Diag((atom.q,), atom.angle, np.array([-0.5, 0.5])), lay)
        mono = monomial(atom.mat)
        return mono is not None and stage_add(stage, Mono((atom.q,), *mono), lay)
    inv = np.argsort(stage.src)
    if isinstance(atom, Diag):
        pattern = atom.table[lay.local_index(atom.qubits)]
        stage.diag_terms.append((atom.angle, pattern[inv]))
    else:  # Mono: diagonal first (conjugated through the current permutation), then permutation
        stage.const_phase = stage.const_phase + atom.phase[lay.local_index(atom.qubits)][inv]
        stage.src = stage.src[lay.expand_src(atom.qubits, atom.src)]
    stage.closed.update(atom.qubits)
    return True


def schedule(atoms: list[Any], n_qubits: int, n_inputs: int) -> tuple[Prep, list[Any], dict[int, int]]:
    """Split atoms into prep, then a list of ``Mux`` / ``Stage``; also the clbit -> qubit map."""
    lay = Layout(n_qubits)
    prep, start = consume_prep(atoms)
    measured: dict[int, int] = {}  # qubit -> clbit of its (last) measurement
    clbit_of: dict[int, int] = {}
    for atom in atoms[:start]:
        if isinstance(atom, Measure):
            measured[atom.q] = atom.clbit
            clbit_of[atom.clbit] = atom.q
    ops: list[Any] = []
    cur: Stage | None = None
    for atom in atoms[start:]:
        if isinstance(atom, Measure):
            measured[atom.q] = atom.clbit
            clbit_of[atom.clbit] = atom.q
            continue
        check_not_measured(atom, measured)
        if isinstance(atom, Mux):
            _flush(cur, ops)
            ops.append(atom)
            cur = None
            continue
        params = atom_params(atom)
        kind = None if not params else any(j < n_inputs for j in params)
        if cur is not None and kind is not None and cur.per_sample is not None and kind != cur.per_sample:
            _flush(cur, ops)
            cur = None
        if cur is None:
            cur = Stage(n_qubits)
        if not stage_add(cur, atom, lay):
            _flush(cur, ops)
            cur = Stage(n_qubits)
            stage_add(cur, atom, lay)
        if kind is not None:
            cur.per_sample = kind
    _flush(cur, ops)
    return prep, ops, clbit_of


def _flush(stage: Stage | None, ops: list[Any]) -> None:
    """Close ``stage`` (a stage of constant gates only counts as per-model) onto ``ops``."""
    if stage is not None:
        if stage.per_sample is None:
            stage.per_sample = False
        ops.append(stage)
