"""Qiskit V2 primitives and qiskit-machine-learning gradients backed by the exact torch engine.

The same compiled simulation as :mod:`qkd_qiskit.engine`, exposed behind the standard interfaces
so that stock qiskit-machine-learning code (``EstimatorQNN`` / ``SamplerQNN`` +
``TorchConnector``) trains at engine speed:

* :class:`EngineEstimator` (``BaseEstimatorV2``, :mod:`.estimator`): exact expectation values.
* :class:`EngineSampler` (``BaseSamplerV2``, :mod:`.sampler`): exact probabilities with
  ``shots=None`` (:class:`ExactDataBin` of :class:`ExactProbArray`, :mod:`.results`), real samples
  from the exact distribution with integer ``shots``.
* :class:`EngineEstimatorGradient` / :class:`EngineSamplerGradient` (:mod:`.estimator_gradient`,
  :mod:`.sampler_gradient`): exact gradients by the engine's autograd (one forward of the distinct
  rows and one backward batched over the observables/outcomes per call, :mod:`.jacobian`).

Underneath: :mod:`.programs` (circuits compiled once, cached by identity), :mod:`.observables`
(Pauli sums on batched states), :mod:`.clbits` (classical-bit outcomes by deferred measurement),
:mod:`.jobs` (the already-finished job every ``run`` returns).

Example:
    >>> import numpy as np, torch
    >>> from qiskit_machine_learning.connectors import TorchConnector
    >>> from qiskit_machine_learning.neural_networks import EstimatorQNN
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("hea")
    >>> est = EngineEstimator()
    >>> qnn = EstimatorQNN(circuit=st.circuit, input_params=st.input_params,
    ...                    weight_params=st.weight_params, observables=st.observables(),
    ...                    estimator=est, gradient=EngineEstimatorGradient(est))
    >>> model = TorchConnector(qnn)
    >>> x = torch.as_tensor(st.input_angles(np.random.default_rng(0).random((4, 64))))
    >>> model(x).shape
    torch.Size([4, 6])
"""

from __future__ import annotations

from .estimator import EngineEstimator
from .estimator_gradient import EngineEstimatorGradient
from .results import ExactDataBin, ExactProbArray
from .sampler import EngineSampler
from .sampler_gradient import EngineSamplerGradient

__all__ = [
    "EngineEstimator",
    "EngineEstimatorGradient",
    "EngineSampler",
    "EngineSamplerGradient",
    "ExactDataBin",
    "ExactProbArray",
]
