"""qiskit-machine-learning behaviour that qkd_qiskit.qnn relies on, pinned against the library itself."""

import numpy as np
import pytest
import torch
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN

from qkd_qiskit.qnn import QNNFunction, without_layout


def _transpiled_x_on_qubit_0():
    """meas[0] = 1 always: X on virtual qubit 0, laid out on physical qubits 3 and 4."""
    qc = QuantumCircuit(QuantumRegister(2, "q"), ClassicalRegister(2, "meas"))
    qc.x(0)
    qc.measure([0, 1], [0, 1])
    pm = generate_preset_pass_manager(optimization_level=1, backend=FakeManilaV2(), initial_layout=[3, 4],
                                      seed_transpiler=0)
    return pm.run(qc)


def _probs(circuit):
    qnn = SamplerQNN(circuit=circuit, sampler=StatevectorSampler(seed=0), input_params=[], weight_params=[],
                     interpret=lambda v: int(v), output_shape=4)
    return qnn.forward(None, None)[0]


def test_sampler_qnn_remaps_counts_of_a_laid_out_circuit_and_without_layout_stops_it():
    isa = _transpiled_x_on_qubit_0()
    assert isa.layout is not None and without_layout(isa).layout is None
    # the library reads count keys as *physical* qubit positions when the circuit has a layout:
    # our `meas` register is keyed by virtual qubit, so the true outcome (meas = 1) is lost ...
    assert _probs(isa)[1] == 0.0
    # ... and is read correctly once the layout is dropped (same instructions, same qubits)
    assert np.allclose(_probs(without_layout(isa)), [0, 1, 0, 0])
    assert without_layout(isa).data == isa.data


def test_qnn_function_matches_torch_connector():
    """Our autograd function over the public forward/backward equals TorchConnector's own."""
    x, w = Parameter("x"), [Parameter("w0"), Parameter("w1")]
    qc = QuantumCircuit(2)
    qc.ry(x, 0)
    qc.rx(w[0], 1)
    qc.cx(0, 1)
    qc.ry(w[1], 1)
    obs = [SparsePauliOp("ZI"), SparsePauliOp("IZ"), SparsePauliOp("XX")]
    estimator = StatevectorEstimator()
    qnn = EstimatorQNN(circuit=qc, estimator=estimator, observables=obs, input_params=[x], weight_params=w,
                       gradient=ParamShiftEstimatorGradient(estimator), input_gradients=True, default_precision=0.0)
    inputs = torch.tensor([[0.3], [1.2], [-0.7]], requires_grad=True)
    weights = torch.tensor([0.4, -1.1], requires_grad=True)
    upstream = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0], [2.0, 1.0, 1.0]])

    ours = QNNFunction.apply(inputs, weights, qnn)
    (ours * upstream).sum().backward()
    g_in, g_w = inputs.grad.clone(), weights.grad.clone()

    conn = TorchConnector(qnn, initial_weights=weights.detach().numpy())
    inputs2 = inputs.detach().clone().requires_grad_(True)
    ref = conn(inputs2)
    (ref * upstream).sum().backward()
    assert torch.equal(ours, ref)
    assert torch.allclose(g_in, inputs2.grad, atol=1e-6) and torch.allclose(g_w, conn.weight.grad, atol=1e-6)


def test_qnn_function_rejects_a_wrong_input_width():
    qc = QuantumCircuit(1)
    qc.ry(Parameter("x"), 0)
    qnn = EstimatorQNN(circuit=qc, estimator=StatevectorEstimator(), input_params=list(qc.parameters))
    with pytest.raises(ValueError, match=r"expected inputs \(B, 1\)"):
        QNNFunction.apply(torch.zeros(4, 2), torch.zeros(0), qnn)
