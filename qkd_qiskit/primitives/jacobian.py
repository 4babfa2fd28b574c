"""The machinery both engine gradients share: the batched autograd Jacobian (:func:`jacobian`) and
the row bookkeeping of a gradient call (grouping rows by circuit, de-duplicating rows, resolving
the requested parameters to columns).

Each row is simulated as its own model; one forward pass and ONE backward pass batched over the
K outputs (``is_grads_batched``) give the whole ``(N, K, P)`` Jacobian, so the cost barely grows
with K.

Example:
    >>> unique_rows(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))[1].tolist()
    [0, 1, 0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit

from ..engine import CompiledCircuit, unfused
from .programs import ProgramCache, values_array

__all__ = ["MAX_ROWS", "Group", "Outputs", "circuit_groups", "jacobian", "resolve_parameters", "unique_rows"]

MAX_ROWS = 1 << 14
"""Rows x outputs of one batched gradient pass (memory bound for large registers)."""

Outputs = Callable[[CompiledCircuit, torch.Tensor, torch.Tensor], torch.Tensor]
"""``outputs(program, angles, weights) -> (N, K)``: what a gradient differentiates."""

Group = tuple[list[int], QuantumCircuit, np.ndarray, list[np.ndarray]]
"""(rows, circuit, values (R, P), requested columns per row) of one circuit of a gradient call."""


def resolve_parameters(engine: ProgramCache, circuits: Sequence[QuantumCircuit],
                       parameters: Sequence[Sequence[Parameter] | None] | None) -> list[Sequence[Parameter]]:
    """The requested parameters of each row; None (per row or for all) means all of the circuit's."""
    if parameters is None:
        parameters = [None] * len(circuits)
    return [p if p is not None else engine.parameters(circuits[i]) for i, p in enumerate(parameters)]


def circuit_groups(engine: ProgramCache, circuits: Sequence[QuantumCircuit],
                   parameter_values: Sequence[Sequence[float]] | np.ndarray,
                   parameters: Sequence[Sequence[Parameter]]) -> Iterator[Group]:
    """Per distinct circuit of a call: (its rows, the circuit, their values (R, P), the columns of
    each row's requested parameters)."""
    columns: dict = {}
    for rows in _group_rows(circuits).values():
        circuit = circuits[rows[0]]
        values = values_array(_take_rows(parameter_values, rows), len(engine.parameters(circuit)))
        yield rows, circuit, values, _requested_columns(engine, circuit, parameters, rows, columns)


def _group_rows(circuits: Sequence[QuantumCircuit]) -> dict[int, list[int]]:
    """Rows of each distinct circuit (by identity), in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(circuits):
        groups.setdefault(id(c), []).append(i)
    return groups


def _take_rows(values: Sequence[Sequence[float]] | np.ndarray, rows: list[int]) -> Any:
    """``values[rows]`` without a Python loop in the common case (an array, all rows in order)."""
    if isinstance(values, np.ndarray):
        return values if len(rows) == len(values) and rows[-1] == len(rows) - 1 else values[rows]
    return [values[r] for r in rows]


def _requested_columns(engine: ProgramCache, circuit: QuantumCircuit, parameters: Sequence[Sequence[Parameter]],
                       rows: list[int], cache: dict) -> list[np.ndarray]:
    """Column of each requested parameter (per row); ``cache`` (one call) is keyed by the identity
    of the parameter sequence, which QNNs repeat for every row."""
    index = None
    out = []
    for r in rows:
        key = (id(circuit), id(parameters[r]))
        if key not in cache:
            if index is None:
                index = engine.parameter_index(circuit)
            try:
                cache[key] = (parameters[r], np.array([index[p] for p in parameters[r]], dtype=np.int64))
            except KeyError as exc:
                raise ValueError(f"gradient: parameter {exc} is not in the circuit") from exc
        out.append(cache[key][1])
    return out


def unique_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows in first-seen order, index of each row's distinct row); hashing the row bytes
    is ~10x faster than ``np.unique(axis=0)`` for the few hundred rows of a QNN call."""
    first: dict[bytes, int] = {}
    row_of = np.array([first.setdefault(row.tobytes(), len(first)) for row in values], dtype=np.int64)
    return values[list(first.values())] if len(first) < len(values) else values, row_of


def jacobian(engine: ProgramCache, circuit: QuantumCircuit, values: np.ndarray, wanted: np.ndarray,
             outputs: Outputs) -> np.ndarray:
    """d outputs / d values, (N, K, P) in circuit.parameters order (zero outside ``wanted``), for
    independent rows (each row is its own model): one forward pass, then ONE backward pass batched
    over the K outputs (``is_grads_batched``), so the cost barely grows with K.
    Only the wanted side (inputs and/or weights) is differentiated."""
    entry = engine.entry(circuit, values)
    # enable_grad: TorchConnector calls us from inside a backward (grad disabled); unfused: the
    # batched backward below is a torch.vmap, which the engine's fused node does not support
    with torch.enable_grad(), unfused():
        angles, weights = engine.tensors(entry, values, per_row=True)
        sides = [(t, cols) for t, cols in ((angles, entry.icols), (weights, entry.wcols))
                 if len(cols) and wanted[cols].any()]
        for t, _ in sides:
            t.requires_grad_()
        out = outputs(entry.program, angles, weights)  # (N, K)
        jac = np.zeros((values.shape[0], out.shape[1], values.shape[1]))
        if not sides:
            return jac
        eye = torch.eye(out.shape[1], dtype=out.dtype, device=out.device)
        cotangents = eye[:, None, :].expand(out.shape[1], *out.shape)  # (K, N, K)
        grads = torch.autograd.grad(out, [t for t, _ in sides], grad_outputs=cotangents,
                                    is_grads_batched=True, allow_unused=True)
    for (t, cols), g in zip(sides, grads):
        if g is not None:  # (K, N, 1, n_in) for angles, (K, N, n_w) for weights
            jac[:, :, cols] = g.reshape(out.shape[1], values.shape[0], -1).permute(1, 0, 2).cpu().numpy()
    return jac
