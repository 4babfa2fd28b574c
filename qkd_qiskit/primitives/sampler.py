""":class:`EngineSampler`: an exact Qiskit ``BaseSamplerV2`` on the torch engine.

With ``shots=None`` (default) each register's data is an
:class:`~qkd_qiskit.primitives.results.ExactProbArray` and the data bin an
:class:`~qkd_qiskit.primitives.results.ExactDataBin` whose ``get_counts(i)`` returns the exact
joint probabilities of all classical bits; that is the route ``SamplerQNN`` reads first, so it gets
exact probabilities. With integer ``shots`` the sampler draws real samples from the exact
distribution and returns ordinary ``BitArray`` data. Mid-circuit measurements are exact by
deferred measurement (a measured qubit must stay idle).

Example:
    >>> from qiskit import QuantumCircuit
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.h(0)
    >>> _ = qc.cx(0, 1)
    >>> qc.measure_all()
    >>> data = EngineSampler().run([qc]).result()[0].data
    >>> {k: round(v, 12) for k, v in data.meas.get_counts().items()}
    {'00': 0.5, '11': 0.5}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import (
    BaseSamplerV2,
    BitArray,
    DataBin,
    PrimitiveResult,
    SamplerPubResult,
)
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.providers import Options

from ..engine import Mode
from .clbits import clbit_map, register_marginal, register_values
from .jobs import DoneJob
from .programs import ProgramCache, values_array
from .results import ExactDataBin, ExactProbArray

__all__ = ["EngineSampler"]


class EngineSampler(BaseSamplerV2):
    """Exact ``BaseSamplerV2`` on the torch engine.

    ``shots=None`` (the default) returns exact probabilities (:class:`ExactDataBin`); an integer
    number of shots draws samples from the exact distribution into ordinary ``BitArray`` data.
    Classical bits never written by a measurement read 0; a qubit measured mid-circuit must not be
    acted on afterwards. ``engine`` (the compiled programs) is public so that
    :class:`~qkd_qiskit.primitives.EngineSamplerGradient` reuses it.
    """

    def __init__(self, *, default_shots: int | None = None, seed: int | np.random.Generator | None = None,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 mode: Mode = "auto"):
        self.engine = ProgramCache(dtype, device, mode)
        self._default_shots = default_shots
        self._rng = np.random.default_rng(seed)
        self.options = Options()

    @property
    def default_shots(self) -> int | None:
        return self._default_shots

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> DoneJob:
        shots = self._default_shots if shots is None else shots
        results = [self._run_pub(pub, shots) for pub in pubs]
        return DoneJob(PrimitiveResult(results, metadata={"version": 2}))

    def distribution(self, circuit: QuantumCircuit, values: np.ndarray) -> np.ndarray:
        """Exact joint clbit distribution ``(N, 2^num_clbits)`` at parameter values (N, P)."""
        values = values_array(values, len(self.engine.parameters(circuit)))
        probs, entry = self.engine.probabilities(circuit, values)
        return (probs @ clbit_map(entry.program, probs)).cpu().numpy()

    def _run_pub(self, pub: Any, shots: int | None) -> SamplerPubResult:
        circuit, values, pshape, shots = self._parse(pub, shots)
        dist = self.distribution(circuit, values).reshape(*pshape, -1)
        meta = {"shots": shots, "exact": shots is None, "circuit_metadata": circuit.metadata}
        if shots is None:
            regs = {creg.name: ExactProbArray(register_marginal(dist, circuit, creg), creg.size)
                    for creg in circuit.cregs}
            data = ExactDataBin(ExactProbArray(dist, circuit.num_clbits), shape=pshape, **regs)
        else:
            data = DataBin(shape=pshape, **self._sample(dist, circuit, shots))
        return SamplerPubResult(data, metadata=meta)

    def _parse(self, pub: Any, shots: int | None) -> tuple:
        if (isinstance(pub, tuple) and len(pub) == 2 and isinstance(pub[0], QuantumCircuit)
                and isinstance(pub[1], np.ndarray) and pub[1].ndim == 2):
            values = values_array(pub[1], len(self.engine.parameters(pub[0])))
            return pub[0], values, (values.shape[0],), shots
        pub = SamplerPub.coerce(pub, shots)
        values, pshape = self.engine.pub_values(pub.circuit, pub.parameter_values)
        return pub.circuit, values, pshape, pub.shots

    def _sample(self, dist: np.ndarray, circuit: QuantumCircuit, shots: int) -> dict[str, BitArray]:
        """Shot-based fallback: sample outcomes, then split the clbits into registers."""
        flat = dist.reshape(-1, dist.shape[-1])
        samples = np.stack([self._rng.choice(flat.shape[1], size=shots, p=p / p.sum()) for p in flat])
        out = {}
        for creg in circuit.cregs:
            vals = register_values(samples, circuit, creg)
            arr = np.stack([BitArray.from_samples(v.tolist(), creg.size).array for v in vals])
            out[creg.name] = BitArray(arr.reshape(*dist.shape[:-1], shots, -1), creg.size)
        return out
