"""The compiled-program cache behind the primitives and their gradients: :class:`ProgramCache`.

Circuits are compiled once and cached by identity. Parameters that are constant across the rows
of a call (the weights of a QNN batch; also recognised by the QNN's ``weights[...]`` names) are
treated as per-model weights, the rest as per-sample inputs, which is the engine's fast layout.
:func:`values_array` checks and reshapes the parameter values of a call.

Example:
    >>> import numpy as np
    >>> from qiskit.circuit import QuantumCircuit, Parameter
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.ry(Parameter("x"), 0)
    >>> cache = ProgramCache(torch.float64, None, "auto")
    >>> psi, entry = cache.states(qc, values_array([0.0, np.pi], 1))
    >>> psi.abs().square().round(decimals=12).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit

from ..engine import CompiledCircuit, Mode, compile_circuit

__all__ = ["ProgramCache", "ProgramEntry", "values_array"]

# Circuits are cached by ``id()`` with a weak reference to check the hit: a ``QuantumCircuit``
# defines ``__eq__`` and is unhashable, so a ``weakref.WeakKeyDictionary`` cannot hold it.


@dataclass
class ProgramEntry:
    """A circuit's parameters, chosen input/weight split and compiled program."""

    ref: weakref.ref
    params: list[Parameter]
    wcols: np.ndarray  # columns (in circuit.parameters order) used as per-model weights
    icols: np.ndarray
    program: CompiledCircuit
    sticky: bool  # derived from a multi-row call or from parameter names


class ProgramCache:
    """Compile cache + state evaluation shared by the primitives and their gradients."""

    def __init__(self, dtype: torch.dtype, device: torch.device | str | None, mode: Mode):
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.mode = mode
        self._entries: dict[int, ProgramEntry] = {}
        self._params: dict[int, tuple[weakref.ref, list[Parameter]]] = {}
        self._index: dict[int, tuple[list[Parameter], dict[Parameter, int]]] = {}

    def parameters(self, circuit: QuantumCircuit) -> list[Parameter]:
        hit = self._params.get(id(circuit))
        if hit is None or hit[0]() is not circuit:
            hit = (weakref.ref(circuit), list(circuit.parameters))
            self._params[id(circuit)] = hit
        return hit[1]

    def parameter_index(self, circuit: QuantumCircuit) -> dict[Parameter, int]:
        """Column of each parameter of ``circuit`` (cached with the parameter list)."""
        params = self.parameters(circuit)
        hit = self._index.get(id(circuit))
        if hit is None or hit[0] is not params:
            hit = (params, {p: i for i, p in enumerate(params)})
            self._index[id(circuit)] = hit
        return hit[1]

    def pub_values(self, circuit: QuantumCircuit, parameter_values: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        """(values (N, P), pub shape) of a coerced pub's ``BindingsArray``."""
        params = self.parameters(circuit)
        if not params:
            return np.zeros((1, 0)), ()
        return parameter_values.as_array(params).reshape(-1, len(params)), parameter_values.shape

    def entry(self, circuit: QuantumCircuit, values: np.ndarray) -> ProgramEntry:
        """Program for ``circuit`` with weight columns constant over the rows of ``values``."""
        params = self.parameters(circuit)
        n_rows = values.shape[0]
        const = np.all(values == values[:1], axis=0) if n_rows > 1 else np.ones(len(params), bool)
        hit = self._entries.get(id(circuit))
        reusable = hit is not None and hit.ref() is circuit and (const[hit.wcols].all() or not n_rows)
        if reusable and (hit.sticky or n_rows <= 1):
            return hit
        by_name = np.array([p.name.startswith("weights[") for p in params], dtype=bool)
        if by_name.any() and const[by_name].all():
            wmask, sticky = by_name, True
        else:
            wmask, sticky = const, n_rows > 1
        wcols, icols = np.flatnonzero(wmask), np.flatnonzero(~wmask)
        program = compile_circuit(circuit, [params[i] for i in icols], [params[i] for i in wcols],
                                  readout_qubits=(), readout="z", mode=self.mode)
        entry = ProgramEntry(weakref.ref(circuit), params, wcols, icols, program, sticky)
        if len(self._entries) > 512:
            self._entries.clear()
        self._entries[id(circuit)] = entry
        return entry

    def tensors(self, entry: ProgramEntry, values: np.ndarray, per_row: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(angles, weights): (1, N, n_in) and (1, n_w), or per row (N, 1, n_in) and (N, n_w)."""
        v = torch.as_tensor(values, dtype=self.dtype, device=self.device)
        angles = v[:, entry.icols]
        if per_row:
            angles, weights = angles.unsqueeze(1), v[:, entry.wcols]
        else:
            angles, weights = angles.unsqueeze(0), v[:1, entry.wcols]
        return angles, weights

    def states(self, circuit: QuantumCircuit, values: np.ndarray) -> tuple[torch.Tensor, ProgramEntry]:
        """Final states ``(N, 2^n)`` of ``circuit`` at ``values`` (N, P); no autograd."""
        return self._evaluate("state", circuit, values)

    def probabilities(self, circuit: QuantumCircuit, values: np.ndarray) -> tuple[torch.Tensor, ProgramEntry]:
        """Basis probabilities ``(N, 2^n)`` of ``circuit`` at ``values`` (N, P); no autograd."""
        return self._evaluate("probabilities", circuit, values)

    def _evaluate(self, method: str, circuit: QuantumCircuit, values: np.ndarray) -> tuple[torch.Tensor, ProgramEntry]:
        entry = self.entry(circuit, values)
        with torch.no_grad():
            angles, weights = self.tensors(entry, values, per_row=False)
            return getattr(entry.program, method)(angles, weights)[0], entry


def values_array(values: Any, n_params: int) -> np.ndarray:
    """Parameter values as a float64 ``(N, n_params)`` array (a flat sequence is split in rows)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, n_params) if n_params else arr.reshape(-1, 0)
    if arr.ndim != 2 or arr.shape[1] != n_params:
        raise ValueError(f"expected parameter values (N, {n_params}), got shape {arr.shape}")
    return arr
