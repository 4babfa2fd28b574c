""":class:`EngineEstimatorGradient`: exact qiskit-machine-learning estimator gradients by autograd
through the engine (``DerivativeType.REAL``).

``EstimatorQNN`` sends its batch once per observable; each distinct parameter row is simulated
once and all observables are differentiated in one backward pass batched over them, so a call
costs about one forward and two backward passes, not 2 circuits per parameter and row.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit.quantum_info import SparsePauliOp
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.ry(Parameter("t"), 0)
    >>> grad = EngineEstimatorGradient().run([qc], [SparsePauliOp("Z")], [[np.pi / 2]]).result()
    >>> grad.gradients[0].round(12).tolist()  # d cos(t) / dt at pi / 2
    [-1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.providers import Options
from qiskit_machine_learning.gradients import (
    BaseEstimatorGradient,
    EstimatorGradientResult,
)
from qiskit_machine_learning.gradients.utils import DerivativeType

from ..engine import CompiledCircuit
from .estimator import EngineEstimator
from .jacobian import (
    MAX_ROWS,
    Outputs,
    circuit_groups,
    jacobian,
    resolve_parameters,
    unique_rows,
)
from .jobs import DoneJob
from .observables import Observable, expectations

__all__ = ["EngineEstimatorGradient"]


class EngineEstimatorGradient(BaseEstimatorGradient):
    """Exact estimator gradients by autograd through the engine (``DerivativeType.REAL``).

    ``EstimatorQNN`` sends its batch once per observable; each distinct parameter row is simulated
    once (as its own model) and all observables are differentiated in one backward pass batched
    over them, so a call costs about one forward and two backward passes, not one per row.
    ``engine`` and ``observable_cache`` are the estimator's (compiled once for both).
    """

    def __init__(self, estimator: EngineEstimator | None = None, options: Options | None = None,
                 derivative_type: DerivativeType = DerivativeType.REAL):
        if derivative_type != DerivativeType.REAL:
            raise NotImplementedError("EngineEstimatorGradient: only DerivativeType.REAL is supported")
        estimator = estimator if estimator is not None else EngineEstimator()
        if not isinstance(estimator, EngineEstimator):
            raise TypeError("EngineEstimatorGradient needs an EngineEstimator")
        super().__init__(estimator, options, derivative_type)
        self.engine = estimator.engine
        self.observable_cache = estimator.observable_cache

    def run(self, circuits: Sequence[QuantumCircuit], observables: Sequence[Any],
            parameter_values: Sequence[Sequence[float]] | np.ndarray,
            parameters: Sequence[Sequence[Parameter] | None] | None = None, **options: Any) -> DoneJob:
        """Same contract as the base class, evaluated synchronously (validation per circuit, not
        per row: ``EstimatorQNN`` sends batch x observables rows of the same circuit)."""
        if isinstance(circuits, QuantumCircuit):
            circuits = (circuits,)
        if not isinstance(observables, (list, tuple)):
            observables = (observables,)
        if len(circuits) != len(parameter_values) or len(circuits) != len(observables):
            raise ValueError("gradient: circuits, observables and parameter values differ in length")
        parameters = resolve_parameters(self.engine, circuits, parameters)
        return DoneJob(self._run(circuits, observables, parameter_values, parameters, **options))

    def _run(self, circuits: Sequence[QuantumCircuit], observables: Sequence[Any],
             parameter_values: Sequence[Sequence[float]] | np.ndarray,
             parameters: Sequence[Sequence[Parameter]], **options: Any) -> EstimatorGradientResult:
        engine = self.engine
        gradients: list[np.ndarray | None] = [None] * len(circuits)
        for rows, circuit, values, cols in circuit_groups(engine, circuits, parameter_values, parameters):
            # EstimatorQNN tiles its batch once per observable: simulate each distinct row once
            # and differentiate every distinct observable on it in one batched backward pass.
            uniq, row_of = unique_rows(values)
            distinct, obs_of = self._distinct_observables(observables, rows, circuit.num_qubits)
            step = max(1, MAX_ROWS // len(distinct))
            same_cols = all(c is cols[0] for c in cols)  # the QNN case: one parameter list
            wanted = np.zeros(values.shape[1], dtype=bool)
            wanted[cols[0] if same_cols else np.concatenate(cols)] = True
            outputs = _expectation_outputs(distinct)
            jac = np.concatenate([jacobian(engine, circuit, uniq[s:s + step], wanted, outputs)
                                  for s in range(0, len(uniq), step)])
            picked = jac[row_of, obs_of]  # (rows, P)
            if same_cols:
                picked = picked[:, cols[0]]
                for k, r in enumerate(rows):
                    gradients[r] = picked[k]
            else:
                for k, r in enumerate(rows):
                    gradients[r] = picked[k, cols[k]]
        metadata = [{"parameters": p} for p in parameters]
        return EstimatorGradientResult(gradients=gradients, metadata=metadata, options=Options(**options))

    def _distinct_observables(self, observables: Sequence[Any], rows: list[int],
                              n: int) -> tuple[list[Observable], np.ndarray]:
        """(compiled distinct observables of ``rows``, index of each row's observable in them);
        distinct by the identity of the caller's operator."""
        seen: dict[int, int] = {}
        distinct: list[Observable] = []
        obs_of = np.empty(len(rows), dtype=np.int64)
        for k, r in enumerate(rows):
            j = seen.get(id(observables[r]))
            if j is None:
                j = seen[id(observables[r])] = len(distinct)
                distinct.append(self.observable_cache.get(observables[r], n))
            obs_of[k] = j
        return distinct, obs_of


def _expectation_outputs(obs: list[Observable]) -> Outputs:
    def outputs(program: CompiledCircuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return expectations(program.state(angles, weights)[:, 0], obs)

    return outputs
