""":class:`EngineEstimator`: an exact Qiskit ``BaseEstimatorV2`` on the torch engine.

Expectation values are exact (``stds`` = 0; the requested ``precision`` is met exactly, so it is
ignored). ``EstimatorQNN`` pubs ``(circuit, SparsePauliOp, values (N, P))`` skip Qiskit's pub
coercion.

Example:
    >>> import numpy as np
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit.quantum_info import SparsePauliOp
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.ry(Parameter("t"), 0)
    >>> evs = EngineEstimator().run([(qc, SparsePauliOp("Z"), [[0.0], [np.pi / 2]])]).result()[0].data.evs
    >>> evs.round(12).tolist()
    [1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.providers import Options
from qiskit.quantum_info import Pauli, SparsePauliOp

from ..engine import Mode
from .jobs import DoneJob
from .observables import ObservableCache
from .programs import ProgramCache, values_array

__all__ = ["EngineEstimator"]


class EngineEstimator(BaseEstimatorV2):
    """Exact ``BaseEstimatorV2`` on the torch engine (float64 by default).

    Pubs sharing a circuit and parameter values (``EstimatorQNN`` sends one pub per observable)
    are simulated once per ``run`` call. ``engine`` (the compiled programs) and
    ``observable_cache`` are public so that :class:`~qkd_qiskit.primitives.EngineEstimatorGradient`
    reuses them.
    """

    def __init__(self, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 default_precision: float = 0.0, mode: Mode = "auto"):
        self.engine = ProgramCache(dtype, device, mode)
        self.observable_cache = ObservableCache()
        self._default_precision = default_precision
        self.options = Options()

    @property
    def default_precision(self) -> float:
        return self._default_precision

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> DoneJob:
        precision = self._default_precision if precision is None else precision
        states: dict[tuple, torch.Tensor] = {}
        results = [self._run_pub(pub, precision, states) for pub in pubs]
        return DoneJob(PrimitiveResult(results, metadata={"version": 2}))

    def _run_pub(self, pub: Any, precision: float, states: dict) -> PubResult:
        circuit, obs_list, oshape, values, pshape = self._parse(pub, precision)
        key = (id(circuit), values.shape, hash(values.tobytes()))
        if key not in states:
            states[key] = self.engine.states(circuit, values)[0]
        psi = states[key]
        n = circuit.num_qubits
        evs = np.stack([self.observable_cache.get(o, n).expectation(psi).cpu().numpy() for o in obs_list])
        shape = np.broadcast_shapes(oshape, pshape)
        o_idx = np.broadcast_to(np.arange(len(obs_list)).reshape(oshape), shape)
        p_idx = np.broadcast_to(np.arange(values.shape[0]).reshape(pshape), shape)
        evs = np.asarray(evs[o_idx, p_idx], dtype=np.float64)
        data = DataBin(evs=evs, stds=np.zeros_like(evs), shape=shape)
        return PubResult(data, metadata={"target_precision": precision, "exact": True,
                                         "circuit_metadata": circuit.metadata})

    def _parse(self, pub: Any, precision: float) -> tuple:
        """(circuit, observables, obs shape, values (N, P), params shape); fast path for QNN pubs."""
        if (isinstance(pub, tuple) and len(pub) == 3 and isinstance(pub[0], QuantumCircuit)
                and isinstance(pub[1], (SparsePauliOp, Pauli)) and isinstance(pub[2], np.ndarray)
                and pub[2].ndim == 2 and pub[1].num_qubits == pub[0].num_qubits):
            circuit = pub[0]
            values = values_array(pub[2], len(self.engine.parameters(circuit)))
            return circuit, [pub[1]], (), values, (values.shape[0],)
        pub = EstimatorPub.coerce(pub, precision)
        circuit = pub.circuit
        obs = pub.observables
        values, pshape = self.engine.pub_values(circuit, pub.parameter_values)
        if self.engine.parameters(circuit) and values.shape[0] == 0:
            raise ValueError("EngineEstimator: empty parameter values")
        return circuit, list(obs.ravel().tolist()) if obs.shape else [obs.tolist()], obs.shape, \
            values, pshape
