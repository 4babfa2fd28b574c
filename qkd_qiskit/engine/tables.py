"""Torch tables of a compiled program: the compile-time tables as tensors of one dtype/device, and
the gather indices that depend on the batch size, both cached.

Example:
    >>> import torch
    >>> from qiskit import QuantumCircuit
    >>> from qkd_qiskit.engine.program import Program
    >>> from qkd_qiskit.engine.reader import ParamIndex, read_atoms
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.h(0), qc.cx(0, 1)
    >>> tables = TorchTables(Program.build(read_atoms(qc, ParamIndex([], [])), 2, 0, 0, 1, "z", (0, 1)), n=2, h=1)
    >>> t = tables.tensors(torch.float64, torch.device("cpu"))
    >>> t.readout.shape, tables.tensors(torch.float64, torch.device("cpu")) is t
    (torch.Size([4, 2]), True)
    >>> tables.batch(t, 3).prep.shape               # (2^n * B * factors,)
    torch.Size([12])
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from .angle_maps import map_to_torch
from .mux import mux_to_torch
from .program import Program
from .stage_group import group_to_torch

__all__ = ["TorchTables"]


class TorchTables:
    """Per dtype/device torch copies of a :class:`~.program.Program` (and per batch size, its
    gather indices), for ``n`` qubits in the layout ``(M, A, B, L)`` with ``L = 2^h``."""

    def __init__(self, program: Program, n: int, h: int):
        self.program, self.n, self.h = program, n, h
        self._cache: dict[tuple[torch.dtype, torch.device], SimpleNamespace] = {}

    def tensors(self, dtype: torch.dtype, device: torch.device) -> SimpleNamespace:
        """Torch copies of the compile-time tables for one dtype/device (cached)."""
        key = (dtype, device)
        if key not in self._cache:
            def f(a: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

            def i(a: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=device)

            prog = self.program
            plan = [(kind, mux_to_torch(x, f, i) if kind == "mux" else x) for kind, x in prog.plan]
            self._cache[key] = SimpleNamespace(
                dtype=dtype, device=device, prep_idx=i(prog.prep_idx),
                prep_map=map_to_torch(prog.prep_map, f, i),
                prep_consts=f(np.array(prog.prep.consts + [0.0, 1.0])),
                readout=f(prog.readout), plan=plan, one=f(np.ones(())),
                wgroup=group_to_torch(prog.wgroup, f, i), igroup=group_to_torch(prog.igroup, f, i),
                by_batch={},
            )
        return self._cache[key]

    def batch(self, t: SimpleNamespace, b: int) -> SimpleNamespace:
        """Gather indices that depend on the batch size ``b`` (cached in ``t`` per B): the prep's
        and each stage's basis permutation, on the flattened state ``(A, B, L)``."""
        if b not in t.by_batch:
            size, lo = 2**self.n, 2**self.h
            hi = size // lo
            a_i = torch.arange(hi, device=t.device)[:, None, None]
            b_i = torch.arange(b, device=t.device)[None, :, None]
            l_i = torch.arange(lo, device=t.device)[None, None, :]

            def perm(src: torch.Tensor) -> torch.Tensor:
                s = src[a_i * lo + l_i]
                return ((s // lo) * (b * lo) + b_i * lo + s % lo).reshape(-1)

            k = t.prep_idx.shape[1]
            n_c = t.prep_consts.shape[0] + 2 * t.prep_map.n
            prep = (b_i.unsqueeze(-1) * n_c + t.prep_idx.view(hi, 1, lo, k)).reshape(-1)
            groups = {}
            for name in ("wgroup", "igroup"):
                gt = getattr(t, name)
                if gt is not None:
                    groups[name] = [perm(gt.src[s]) if gt.g.has_perm[s] else None
                                    for s in range(len(gt.g.stages))]
            t.by_batch[b] = SimpleNamespace(prep=prep, **groups)
        return t.by_batch[b]
