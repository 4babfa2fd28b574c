"""EngineEstimator and EngineEstimatorGradient on a generic circuit, against Qiskit's
StatevectorEstimator, Statevector and qiskit-machine-learning's ParamShiftEstimatorGradient."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector
from qiskit_machine_learning.gradients import (
    BaseEstimatorGradient,
    ParamShiftEstimatorGradient,
)
from qiskit_machine_learning.gradients.utils import DerivativeType

from qkd_qiskit.primitives import EngineEstimator, EngineEstimatorGradient


def _small_circuit() -> tuple[QuantumCircuit, ParameterVector]:
    p = ParameterVector("p", 4)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.ry(p[0], 1)
    qc.cx(0, 2)
    qc.rx(2 * p[1] - 0.4, 2)
    qc.rzz(p[2], 0, 1)
    qc.cry(p[3], 1, 2)
    qc.u(p[0], p[1], 0.3, 0)
    return qc, p


def test_estimator_matches_statevector_estimator_on_general_pubs():
    qc, _ = _small_circuit()
    values = np.random.default_rng(4).uniform(-2, 2, (4, 4))
    obs = [[SparsePauliOp.from_list([("XYZ", 0.5), ("IIZ", -1.0)])], [SparsePauliOp("YXI")],
           [SparsePauliOp.from_list([("ZZI", 0.3), ("XIX", 0.2)])]]
    res = EngineEstimator().run([(qc, obs, values)]).result()[0]
    ref = StatevectorEstimator().run([(qc, obs, values)]).result()[0].data.evs
    assert res.data.evs.shape == ref.shape == (3, 4)
    assert np.abs(res.data.evs - ref).max() < 1e-10
    assert not res.data.stds.any() and res.metadata["exact"]


def test_estimator_qnn_style_pubs_match_statevector():
    """The fast path for ``(circuit, SparsePauliOp, values (N, P))`` pubs (what EstimatorQNN sends)."""
    qc, _ = _small_circuit()
    values = np.random.default_rng(7).uniform(-2, 2, (5, 4))
    obs = [SparsePauliOp("ZII"), SparsePauliOp.from_list([("XYZ", 0.5), ("IZI", -1.0)])]
    res = EngineEstimator().run([(qc, o, values) for o in obs]).result()
    for o, pub in zip(obs, res):
        ref = [Statevector(qc.assign_parameters(v)).expectation_value(o).real for v in values]
        assert pub.data.evs.shape == (5,)
        assert np.abs(pub.data.evs - ref).max() < 1e-10


_PROJ = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
         "Z": np.diag([1, -1]), "0": np.diag([1, 0]), "1": np.diag([0, 1]),
         "+": np.full((2, 2), 0.5), "-": np.array([[0.5, -0.5], [-0.5, 0.5]]),
         "r": np.array([[0.5, -0.5j], [0.5j, 0.5]]), "l": np.array([[0.5, 0.5j], [-0.5j, 0.5]])}


def test_estimator_projector_labels_match_operator_matrices():
    """ObservablesArray labels may hold projectors (0 1 + - r l); StatevectorEstimator cannot read
    them, so the reference is the operator's matrix (big-endian label, Kronecker products)."""
    qc, _ = _small_circuit()
    values = np.random.default_rng(8).uniform(-2, 2, (3, 4))
    terms = {"0+r": 0.4, "XIl": -0.1, "1-Z": 0.7}
    evs = EngineEstimator().run([(qc, [terms], values)]).result()[0].data.evs
    matrix = sum(c * np.kron(np.kron(_PROJ[k[0]], _PROJ[k[1]]), _PROJ[k[2]]) for k, c in terms.items())
    ref = [Statevector(qc.assign_parameters(v)).expectation_value(Operator(matrix)).real for v in values]
    assert evs.shape == (3,) and np.abs(evs - ref).max() < 1e-10


def test_estimator_gradient_matches_param_shift():
    qc, _ = _small_circuit()
    values = np.random.default_rng(5).uniform(-2, 2, (3, 4))
    obs = SparsePauliOp.from_list([("XYZ", 0.5), ("ZIZ", -1.0)])
    ours = EngineEstimatorGradient().run([qc] * 3, [obs] * 3, values).result().gradients
    ref = ParamShiftEstimatorGradient(StatevectorEstimator()).run([qc] * 3, [obs] * 3, values).result().gradients
    assert np.abs(np.array(ours) - np.array(ref)).max() < 1e-9


def test_estimator_gradient_mixed_rows_match_param_shift():
    """Repeated rows, a different observable per row and per-row parameter subsets (the rows are
    deduplicated and the observables batched internally; each row must still get its own answer)."""
    qc, p = _small_circuit()
    base = np.random.default_rng(6).uniform(-2, 2, (2, 4))
    values = base[[0, 1, 0, 1, 0]]
    obs = [SparsePauliOp("XYZ"), SparsePauliOp("XYZ"), SparsePauliOp.from_list([("ZIZ", -1.0), ("IXI", 0.4)]),
           SparsePauliOp("IIZ"), SparsePauliOp("YYI")]
    params = [[p[0], p[2]], list(p), [p[3]], [p[1], p[0]], list(p)]
    ours = EngineEstimatorGradient().run([qc] * 5, obs, values, parameters=params).result()
    ref = ParamShiftEstimatorGradient(StatevectorEstimator()).run([qc] * 5, obs, values,
                                                                    parameters=params).result().gradients
    for a, b, ps, meta in zip(ours.gradients, ref, params, ours.metadata):
        assert a.shape == (len(ps),) and meta["parameters"] == ps
        assert np.abs(a - b).max() < 1e-9


def test_estimator_gradient_reuses_the_estimators_programs():
    """The gradient holds its own public reference to the estimator's compiled programs."""
    qc, _ = _small_circuit()
    est = EngineEstimator()
    grad = EngineEstimatorGradient(est)
    assert grad.engine is est.engine and grad.observable_cache is est.observable_cache
    assert not hasattr(BaseEstimatorGradient, "engine")  # the name is ours, not the base class's
    values = np.random.default_rng(9).uniform(-2, 2, (2, 4))
    grad.run([qc] * 2, [SparsePauliOp("ZZZ")] * 2, values).result()
    program = est.engine.entry(qc, values).program
    est.run([(qc, SparsePauliOp("ZZZ"), values)]).result()
    assert est.engine.entry(qc, values).program is program


def test_estimator_gradient_contract_errors():
    qc, p = _small_circuit()
    with pytest.raises(TypeError):
        EngineEstimatorGradient(StatevectorEstimator())
    with pytest.raises(NotImplementedError):
        EngineEstimatorGradient(derivative_type=DerivativeType.IMAG)
    grad = EngineEstimatorGradient()
    with pytest.raises(ValueError, match="differ in length"):
        grad.run([qc] * 2, [SparsePauliOp("ZZZ")], np.zeros((2, 4)))
    other = ParameterVector("q", 1)[0]
    with pytest.raises(ValueError, match="not in the circuit"):
        grad.run([qc], [SparsePauliOp("ZZZ")], np.zeros((1, 4)), parameters=[[p[0], other]])
