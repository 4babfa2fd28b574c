""":class:`EngineSamplerGradient`: exact qiskit-machine-learning sampler gradients (of the joint
classical-bit distribution) by autograd through the engine.

Each row is an independent model; one forward and one backward pass batched over the outcomes
give the full Jacobian. Outcomes are restricted to the clbits actually written by measurements.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.ry(Parameter("t"), 0)
    >>> qc.measure_all()
    >>> grad = EngineSamplerGradient().run([qc], [[np.pi / 2]]).result()
    >>> {k: round(v, 12) for k, v in grad.gradients[0][0].items()}  # d (1 -+ cos t) / 2 / dt
    {0: -0.5, 1: 0.5}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.providers import Options
from qiskit_machine_learning.gradients import BaseSamplerGradient, SamplerGradientResult

from ..engine import CompiledCircuit
from .clbits import clbit_map, written_outcomes
from .jacobian import MAX_ROWS, Outputs, circuit_groups, jacobian, resolve_parameters
from .jobs import DoneJob
from .sampler import EngineSampler

__all__ = ["EngineSamplerGradient"]


class EngineSamplerGradient(BaseSamplerGradient):
    """Exact gradients of the joint clbit distribution by autograd through the engine.

    Each row is an independent model; one forward and one backward pass batched over the outcomes
    give the full Jacobian. Outcomes are restricted to the clbits actually written by measurements.
    ``engine`` is the sampler's (programs compiled once for both).
    """

    def __init__(self, sampler: EngineSampler | None = None, options: Options | None = None):
        sampler = sampler if sampler is not None else EngineSampler()
        if not isinstance(sampler, EngineSampler):
            raise TypeError("EngineSamplerGradient needs an EngineSampler")
        super().__init__(sampler, options)
        self.engine = sampler.engine

    def run(self, circuits: Sequence[QuantumCircuit], parameter_values: Sequence[Sequence[float]],
            parameters: Sequence[Sequence[Parameter] | None] | None = None, **options: Any) -> DoneJob:
        if isinstance(circuits, QuantumCircuit):
            circuits = (circuits,)
        if len(circuits) != len(parameter_values):
            raise ValueError("gradient: circuits and parameter values differ in length")
        parameters = resolve_parameters(self.engine, circuits, parameters)
        return DoneJob(self._run(circuits, parameter_values, parameters, **options))

    def _run(self, circuits: Sequence[QuantumCircuit], parameter_values: Sequence[Sequence[float]],
             parameters: Sequence[Sequence[Parameter]], **options: Any) -> SamplerGradientResult:
        engine = self.engine
        gradients: list[Any] = [None] * len(circuits)
        for rows, circuit, values, cols in circuit_groups(engine, circuits, parameter_values, parameters):
            outcomes = written_outcomes(engine.entry(circuit, values).program)
            wanted = np.zeros(values.shape[1], dtype=bool)
            wanted[np.concatenate(cols)] = True
            outputs = _outcome_outputs(outcomes)
            step = max(1, MAX_ROWS // len(outcomes))
            full = np.concatenate([jacobian(engine, circuit, values[s:s + step], wanted, outputs)
                                   for s in range(0, len(values), step)])
            for i, r in enumerate(rows):
                jac = full[i][:, cols[i]]  # (outcomes, requested params)
                gradients[r] = [{int(o): float(jac[j, p]) for j, o in enumerate(outcomes)}
                                for p in range(jac.shape[1])]
        metadata = [{"parameters": p} for p in parameters]
        return SamplerGradientResult(gradients=gradients, metadata=metadata, options=Options(**options))


def _outcome_outputs(outcomes: np.ndarray) -> Outputs:
    """Probabilities of the given joint clbit outcomes, (N, K)."""
    def outputs(program: CompiledCircuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        probs = program.probabilities(angles, weights)[:, 0]
        dist = probs @ clbit_map(program, probs)
        return dist[:, torch.as_tensor(outcomes, device=dist.device)]

    return outputs
