"""Atoms: the small gate vocabulary a circuit is read into (compile time only, numpy).

Every gate angle is an :class:`Affine` function of the joint parameter vector ``[inputs, weights]``;
every gate becomes one of :class:`Rot`, :class:`Const1`, :class:`Diag`, :class:`Mono`, :class:`Mux`
or :class:`Measure`. The reader (:mod:`.reader`) produces them, the scheduler (:mod:`.schedule`)
groups them.

Example:
    >>> import numpy as np
    >>> src, phase = monomial(np.array([[0, 1], [1, 0]]))   # X: a permutation, no phases
    >>> src.tolist(), phase.tolist()
    ([1, 0], [0.0, 0.0])
    >>> atom_qubits(Mux(2, (0, 1), [])), atom_params(Rot(0, "Y", Affine(((3, 1.0),), 0.0)))
    ((0, 1, 2), {3})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Affine", "Const1", "Diag", "Measure", "Mono", "Mux", "Rot", "atom_params", "atom_qubits",
           "check_not_measured", "monomial"]


@dataclass(frozen=True)
class Affine:
    """``angle = sum_j coef[j] * params[j] + offset`` over the joint vector ``[inputs, weights]``."""

    coef: tuple[tuple[int, float], ...]
    offset: float

    def params(self) -> set[int]:
        return {j for j, _ in self.coef}


@dataclass
class Rot:
    """``exp(-i angle/2 P)`` on one qubit, ``P`` in X, Y, Z."""

    q: int
    axis: str
    angle: Affine


@dataclass
class Const1:
    """A constant 2x2 unitary on one qubit."""

    q: int
    mat: np.ndarray


@dataclass
class Diag:
    """Diagonal gate: ``phase(local index) = angle * table`` on ``qubits``."""

    qubits: tuple[int, ...]
    angle: Affine
    table: np.ndarray


@dataclass
class Mono:
    """Constant monomial gate = permutation after diagonal: ``new[r] = e^{i phase[src[r]]} old[src[r]]``."""

    qubits: tuple[int, ...]
    src: np.ndarray
    phase: np.ndarray


@dataclass
class Mux:
    """Multiplexed RY: for control state ``c`` apply ``RY(angles[c])`` to ``target``."""

    target: int
    controls: tuple[int, ...]
    angles: list[Affine]


@dataclass
class Measure:
    """Measurement of qubit ``q`` into classical bit ``clbit``."""

    q: int
    clbit: int


def atom_qubits(atom: Any) -> tuple[int, ...]:
    """The qubits an atom acts on (a :class:`Mux`: controls, then target)."""
    if isinstance(atom, (Rot, Const1)):
        return (atom.q,)
    if isinstance(atom, Mux):
        return (*atom.controls, atom.target)
    if isinstance(atom, Measure):
        return (atom.q,)
    return atom.qubits


def atom_params(atom: Any) -> set[int]:
    """Joint indices of the parameters an atom's angles depend on."""
    if isinstance(atom, (Rot, Diag)):
        return atom.angle.params()
    if isinstance(atom, Mux):
        return set().union(*(a.params() for a in atom.angles))
    return set()


def check_not_measured(atom: Any, measured: Any) -> None:
    """Raise if ``atom`` acts on a qubit in ``measured`` (deferred measurement needs them idle)."""
    hit = [q for q in atom_qubits(atom) if q in measured]
    if hit:
        raise ValueError(f"compile_circuit: qubit {hit[0]} is acted on after being measured "
                         "(deferred measurement needs measured qubits to stay idle)")


def monomial(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(src, phase)`` if ``mat`` is a permutation times unit phases, else None."""
    dim = mat.shape[0]
    src, phase = np.zeros(dim, dtype=np.int64), np.zeros(dim)
    for c in range(dim):
        rows = np.flatnonzero(np.abs(mat[:, c]) > 1e-9)
        if len(rows) != 1 or abs(abs(mat[rows[0], c]) - 1) > 1e-9:
            return None
        src[rows[0]] = c
        phase[c] = np.angle(mat[rows[0], c])
    return src, phase
