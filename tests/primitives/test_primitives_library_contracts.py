"""Library behaviour the engine primitives rely on, pinned so that an upgrade that changes it fails
here: how qiskit-machine-learning's QNNs call our primitives and read their results."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import (
    BaseSamplerV2,
    BitArray,
    DataBin,
    PrimitiveResult,
    SamplerPubResult,
)
from qiskit.quantum_info import SparsePauliOp
from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN

from qkd_qiskit.primitives import EngineEstimator, EngineEstimatorGradient
from qkd_qiskit.primitives.jobs import DoneJob


class _CountsBin(DataBin):
    """A data bin with its own ``get_counts`` and a ``meas`` register that disagrees with it."""

    def get_counts(self, loc=None):
        return [{"01": 3.0, "10": 1.0}, {"11": 0.5}][loc]


class _FixedSampler(BaseSamplerV2):
    def run(self, pubs, *, shots=None):
        meas = BitArray.from_samples(["00"] * 4, 2)  # what the fallback route would read
        data = _CountsBin(meas=BitArray(np.stack([meas.array] * 2), 2), shape=(2,))
        return DoneJob(PrimitiveResult([SamplerPubResult(data)]))


def test_sampler_qnn_reads_the_data_bin_get_counts_per_row():
    """SamplerQNN reads ``pub.data.get_counts(i)`` (before any register), normalises it by its
    sum and parses bitstring keys base 2: ExactDataBin's exact joint distribution is what it gets."""
    x, w = ParameterVector("x", 1), ParameterVector("w", 1)
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.ry(w[0], 1)
    qc.measure_all()
    qnn = SamplerQNN(circuit=qc, input_params=list(x), weight_params=list(w), sampler=_FixedSampler(),
                     interpret=lambda i: i, output_shape=4)
    out = qnn.forward(np.zeros((2, 1)), np.zeros(1))
    assert np.array_equal(out, [[0, 0.75, 0.25, 0], [0, 0, 0, 1]])


def test_estimator_qnn_sends_fast_path_pubs_and_one_circuit():
    """EstimatorQNN sends ``(circuit, SparsePauliOp, values (N, P) array)`` pubs and gradient rows
    that repeat the same circuit object; the estimator's fast path and the gradient's grouping by
    identity rely on it (only speed depends on it, not the values)."""
    calls = {"pubs": [], "grad": []}

    class Est(EngineEstimator):
        def run(self, pubs, *, precision=None):
            pubs = list(pubs)
            calls["pubs"] += pubs
            return super().run(pubs, precision=precision)

    class Grad(EngineEstimatorGradient):
        def run(self, circuits, observables, parameter_values, parameters=None, **options):
            calls["grad"].append((circuits, parameter_values))
            return super().run(circuits, observables, parameter_values, parameters, **options)

    x, w = ParameterVector("x", 2), ParameterVector("weights", 2)
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.ry(x[1], 1)
    qc.rx(w[0], 0)
    qc.cx(0, 1)
    qc.ry(w[1], 1)
    est = Est()
    qnn = EstimatorQNN(circuit=qc, input_params=list(x), weight_params=list(w), estimator=est,
                       gradient=Grad(est), observables=[SparsePauliOp("ZI"), SparsePauliOp("IZ")])
    qnn.forward(np.ones((3, 2)), np.ones(2))
    qnn.backward(np.ones((3, 2)), np.ones(2))
    assert calls["pubs"] and calls["grad"]
    for pub in calls["pubs"]:
        assert isinstance(pub, tuple) and len(pub) == 3 and isinstance(pub[0], QuantumCircuit)
        assert isinstance(pub[1], SparsePauliOp) and isinstance(pub[2], np.ndarray) and pub[2].ndim == 2
    for circuits, values in calls["grad"]:
        assert len({id(c) for c in circuits}) == 1 and isinstance(values, np.ndarray)
