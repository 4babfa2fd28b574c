"""The compiled program: every compile-time (numpy) table of a circuit, built from its atoms.

:meth:`Program.build` schedules the atoms (:mod:`.schedule`), then tabulates the prep gather, the
weight and input stage groups, the order in which stages and mux ops run (``plan``), and the
read-out table (from :func:`qkd_qiskit.readout.readout_table`). Nothing here touches torch; the
torch copies per dtype/device are made by :mod:`.tables`.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qkd_qiskit.engine.reader import ParamIndex, read_atoms
    >>> x, w = Parameter("x"), Parameter("w")
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.ry(x, 0), qc.cx(0, 1), qc.rx(w, 1)
    >>> prog = Program.build(read_atoms(qc, ParamIndex([x], [w])), n=2, n_in=1, n_w=1, h=1,
    ...                      readout="z", readout_qubits=(0, 1))
    >>> prog.plan, prog.encodable, prog.readout.tolist()
    ([('weight', 0), ('weight', 1)], True, [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..readout import readout_table
from .angle_maps import AffineMap
from .atoms import Mux, atom_params
from .layout import Layout
from .mux import mux_tables
from .prep import Prep, prep_index
from .schedule import Stage, schedule
from .stage_group import StageGroup

__all__ = ["Program"]


@dataclass
class Program:
    """Compile-time tables of a circuit (see the module docstring)."""

    prep: Prep
    prep_idx: np.ndarray  # (2^n, K) gather index of the prep factors
    prep_map: AffineMap  # half angles of the prep's rotation slots
    wgroup: StageGroup | None  # all per-model (weight) stages
    igroup: StageGroup | None  # all per-sample (input) stages
    plan: list[tuple[str, Any]]  # ("weight" | "input", stage index in its group) or ("mux", tables)
    n_stages: int
    encodable: bool  # inputs only in the prep, and the prep uses no weights
    readout: np.ndarray  # (2^n, n_outputs): probabilities -> read-out
    clbit_qubits: dict[int, int]  # clbit -> qubit of its (last) measurement

    @staticmethod
    def build(atoms: list[Any], n: int, n_in: int, n_w: int, h: int, readout: str,
              readout_qubits: Sequence[int]) -> Program:
        prep, ops, clbit_qubits = schedule(atoms, n, n_in)
        lay = Layout(n)
        w_stages = [op for op in ops if isinstance(op, Stage) and not op.per_sample]
        i_stages = [op for op in ops if isinstance(op, Stage) and op.per_sample]
        plan: list[tuple[str, Any]] = []
        counters = {"weight": 0, "input": 0}
        for op in ops:
            if isinstance(op, Mux):
                plan.append(("mux", mux_tables(op, lay, n_in, n_w)))
            else:
                kind = "input" if op.per_sample else "weight"
                plan.append((kind, counters[kind]))
                counters[kind] += 1
        prep_params = set().union(*(a.params() for a in prep.slots)) if prep.slots else set()
        encodable = (not any(j >= n_in for j in prep_params)
                     and not any(j < n_in for j in _later_params(ops)))
        return Program(
            prep=prep, prep_idx=prep_index(prep, lay), prep_map=AffineMap.build(prep.slots, n_in, n_w, 0.5),
            wgroup=StageGroup.build(w_stages, n, n_in, n_w, h) if w_stages else None,
            igroup=StageGroup.build(i_stages, n, n_in, n_w, h) if i_stages else None,
            plan=plan, n_stages=len(ops), encodable=encodable,
            readout=readout_table(n, readout_qubits, readout), clbit_qubits=clbit_qubits,
        )


def _later_params(ops: list[Any]) -> set[int]:
    """Parameters used after the prep (by mux ops and stages)."""
    out: set[int] = set()
    for op in ops:
        if isinstance(op, Mux):
            out |= atom_params(op)
        else:
            for slots in op.local.values():
                for a in slots:
                    out |= atom_params(a)
            for a, _ in op.diag_terms:
                out |= a.params()
    return out
