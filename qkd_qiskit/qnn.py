"""Hybrid students as Qiskit QNNs: circuit -> EstimatorQNN/SamplerQNN -> TorchConnector -> linear head.

The exact engine (:class:`~qkd_qiskit.models.HybridStudent`) is what ``qkd run`` trains fast. This
module runs the *same* student circuit through qiskit-machine-learning on any backend profile
(:mod:`qkd_qiskit.backends`), so the unchanged trainer (with or without KD) can also train on a
noisy simulator or a device, and an engine-trained checkpoint can be evaluated there:

* ``readout == "z"`` students -> ``EstimatorQNN`` with the student's ``Z_q`` observables;
* ``readout == "probs"`` students (q_nd) -> ``SamplerQNN`` whose ``interpret`` reads only the kept
  qubits out of the single ``meas`` register (``output_shape = 2**k``).

Circuits are prepared once per backend: the logical circuit for ``statevector``; for ``aer`` the
ISA circuit cut down to its active qubits (with the noise model restricted to them); for ``ibm``
the full ISA circuit with observables mapped by ``apply_layout``. Only parameter values change
between batches. Models follow the ensemble convention of :mod:`qkd_qiskit.models`: ``weights`` is
one Parameter ``(M, n_weights)`` and ``state_dict`` keys equal the engine student's
(``quantum.weights``, ``head.*``), so checkpoints load either way.

On ``statevector`` the primitives and gradients are the engine's (:mod:`qkd_qiskit.primitives`:
exact values, exact autograd gradients). On noisy backends gradients come from
qiskit-machine-learning: parameter shift (unbiased; 2 circuits per parameter occurrence per
sample) or SPSA (2 circuits per sample). That is slow - seconds to minutes per step even for
small students - so noisy training is for small runs only.

The hybrid student that puts a head on :class:`QNNLayer` is
:class:`~qkd_qiskit.models.qnn_student.QNNStudent`.

Example:
    >>> import torch
    >>> from qkd_qiskit.backends import get_backend
    >>> from qkd_qiskit.circuits import build_student
    >>> layer = QNNLayer(build_student("hea", n_qubits=2, layers=1), 1, [torch.Generator().manual_seed(0)],
    ...                  torch.float64, get_backend("statevector"))
    >>> layer(torch.rand(1, 5, 4)).shape
    torch.Size([1, 5, 2])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit_machine_learning.connectors import TorchConnector
from torch import nn

from .backends import AerBackend, Backend, IBMRuntimeBackend, StatevectorBackend
from .circuits import initial_weights, without_measurements
from .primitives import EngineEstimator, EngineEstimatorGradient, EngineSampler, EngineSamplerGradient
from .readout import MEAS_REGISTER, outcome_index

Gradient = Literal["auto", "param_shift", "spsa"]
"""``auto``: the engine's exact gradient on ``statevector``, parameter shift on noisy backends."""
SPSA_EPSILON = 0.1
"""SPSA perturbation: large enough to rise above shot noise (qiskit-ml's default 1e-6 is for exact)."""


# --------------------------------------------------------------------------------------------------
# Circuits, interpret and primitives per backend
# --------------------------------------------------------------------------------------------------


def exact_measured_circuit(student: Any) -> QuantumCircuit:
    """Unitary part plus final measurements of the read-out qubits only (``q -> meas[q]``).

    Exact for q_nd students: a mid-circuit-measured qubit is never touched again, so dropping its
    measurement leaves the read-out marginal unchanged (and statevector samplers need final
    measurements only).
    """
    qc = without_measurements(student.measured_circuit())
    meas = next(c for c in qc.cregs if c.name == MEAS_REGISTER)
    for q in student.readout_qubits:
        qc.measure(q, meas[q])
    return qc


@dataclass(frozen=True)
class ReadoutInterpret:
    """``meas`` register value -> read-out outcome ``sum_j bit(readout_qubits[j]) << j`` (picklable)."""

    readout_qubits: tuple[int, ...]

    def __call__(self, value: int) -> int:
        return int(outcome_index(int(value), self.readout_qubits))


@dataclass
class QNNParts:
    """What a QNN needs on one backend: circuit, observables (``z`` students), primitive, precision."""

    circuit: QuantumCircuit
    observables: list[SparsePauliOp] | None
    primitive: Any
    precision: float


def _exact_primitive(student: Any) -> Any:
    """The engine's exact primitive (:mod:`qkd_qiskit.primitives`): estimator for ``z``, sampler else."""
    return EngineEstimator() if student.readout == "z" else EngineSampler()


def _compact_observables(student: Any, backend: AerBackend) -> list[SparsePauliOp]:
    """``Z_q`` on the compact qubit that holds virtual qubit ``q`` at the end of the ISA circuit."""
    t = backend.transpiled(student, measured=False, keep_parameters=True)
    cmp = backend.compacted(student, measured=False, keep_parameters=True)
    pos = {p: i for i, p in enumerate(cmp.physical)}
    n = len(cmp.physical)
    return [SparsePauliOp.from_sparse_list([("Z", [pos[t.final_layout[q]]], 1.0)], num_qubits=n)
            for q in student.readout_qubits]


def qnn_parts(student: Any, backend: Backend, mode: Any = None) -> QNNParts:
    """Circuit, observables and primitive of ``student`` on ``backend`` (transpiled once, cached)."""
    z = student.readout == "z"
    if isinstance(backend, StatevectorBackend):
        circuit = student.circuit if z else exact_measured_circuit(student)
        return QNNParts(circuit, student.observables() if z else None, _exact_primitive(student), 0.0)
    if isinstance(backend, AerBackend):
        cmp = backend.compacted(student, measured=not z, keep_parameters=True)
        if z:
            return QNNParts(cmp.circuit, _compact_observables(student, backend), backend.estimator(cmp.noise_model),
                            1 / math.sqrt(backend.profile.shots))
        return QNNParts(cmp.circuit, None, backend.sampler(cmp.noise_model), 0.0)
    if isinstance(backend, IBMRuntimeBackend):
        t = backend.transpiled(student, measured=not z, keep_parameters=True)
        prim = backend.make_primitive("estimator" if z else "sampler", mode if mode is not None else backend.device)
        if z:
            obs = [o.apply_layout(t.circuit.layout) for o in student.observables()]
            return QNNParts(t.circuit, obs, prim, 1 / math.sqrt(backend.profile.shots))
        return QNNParts(without_layout(t.circuit), None, prim, 0.0)
    raise TypeError(f"qnn_parts: unsupported backend {type(backend).__name__}")


def without_layout(circuit: QuantumCircuit) -> QuantumCircuit:
    """The same instructions on the same (physical) qubits, with no transpiler layout attached.

    ``SamplerQNN`` maps sampled bits back through ``circuit.layout`` when there is one (pinned by a
    test); our ``interpret`` already reads the ``meas`` register, whose bits are keyed by virtual
    qubit, so the layout must not be applied twice. ``compose`` into a fresh circuit is the public
    way to drop it.
    """
    out = QuantumCircuit(*circuit.qregs, *circuit.cregs, name=circuit.name, global_phase=circuit.global_phase)
    out.compose(circuit, inplace=True)
    return out


def _gradient(parts: QNNParts, gradient: Gradient, seed: int | None) -> Any:
    """Gradient on the same primitive: the engine's exact autograd gradient (``auto`` on the exact
    primitives), parameter shift (``auto`` elsewhere, or asked for) or SPSA (qiskit-machine-learning)."""
    from qiskit_machine_learning import gradients as g

    z = parts.observables is not None
    if gradient == "auto" and isinstance(parts.primitive, (EngineEstimator, EngineSampler)):
        return EngineEstimatorGradient(parts.primitive) if z else EngineSamplerGradient(parts.primitive)
    if gradient == "spsa":
        cls = g.SPSAEstimatorGradient if z else g.SPSASamplerGradient
        return cls(parts.primitive, epsilon=SPSA_EPSILON, seed=seed)
    cls = g.ParamShiftEstimatorGradient if z else g.ParamShiftSamplerGradient
    return cls(parts.primitive)


def build_qnn(student: Any, backend: Backend, gradient: Gradient = "auto", seed: int | None = None,
              mode: Any = None) -> Any:
    """``EstimatorQNN`` (``z`` read-out) or ``SamplerQNN`` (``probs``) of a student on a backend."""
    from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN

    parts = qnn_parts(student, backend, mode)
    missing = [p.name for p in (*student.input_params, *student.weight_params) if p not in set(parts.circuit.parameters)]
    if missing:
        raise ValueError(f"build_qnn: the prepared circuit lost parameter(s) {missing[:5]} (transpiler removed them)")
    grad = _gradient(parts, gradient, seed)
    if parts.observables is not None:
        return EstimatorQNN(circuit=parts.circuit, estimator=parts.primitive, observables=parts.observables,
                            input_params=list(student.input_params), weight_params=list(student.weight_params),
                            gradient=grad, default_precision=parts.precision)
    return SamplerQNN(circuit=parts.circuit, sampler=parts.primitive, input_params=list(student.input_params),
                      weight_params=list(student.weight_params), interpret=ReadoutInterpret(student.readout_qubits),
                      output_shape=student.n_outputs, gradient=grad)


# --------------------------------------------------------------------------------------------------
# Torch modules
# --------------------------------------------------------------------------------------------------


class QNNFunction(torch.autograd.Function):
    """Autograd over a QNN's public ``forward`` / ``backward``: inputs ``(B, n_in)`` and one weight
    vector ``(n_w,)`` -> outputs ``(B, n_out)`` (float32, as ``TorchConnector`` returns them).

    Ours rather than ``TorchConnector``'s internal function (a private name of
    qiskit-machine-learning that may change on any upgrade); the arithmetic is the same as the
    connector's dense path: the QNN's Jacobians contracted with the incoming gradient.
    """

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, weights: torch.Tensor, qnn: Any) -> torch.Tensor:
        if inputs.dim() != 2 or inputs.shape[1] != qnn.num_inputs:
            raise ValueError(f"QNNFunction: expected inputs (B, {qnn.num_inputs}), got {tuple(inputs.shape)}")
        ctx.qnn = qnn
        ctx.save_for_backward(inputs, weights)
        out = qnn.forward(inputs.detach().cpu().numpy(), weights.detach().cpu().numpy())
        return torch.as_tensor(out, dtype=torch.float).to(inputs.device)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:  # type: ignore[override]
        inputs, weights = ctx.saved_tensors
        g_in, g_w = ctx.qnn.backward(inputs.detach().cpu().numpy(), weights.detach().cpu().numpy())
        go = grad_output.detach().cpu()
        d_in = d_w = None
        if g_in is not None:  # (B, n_out, n_in)
            d_in = torch.einsum("ab,abc->ac", go, torch.as_tensor(g_in, dtype=torch.float)).to(inputs.device)
        if g_w is not None:  # (B, n_out, n_w)
            d_w = torch.einsum("ab,abc->c", go, torch.as_tensor(g_w, dtype=torch.float)).to(weights.device)
        return d_in, d_w, None


class RowConnector(TorchConnector):
    """A ``TorchConnector`` whose weights are given per call: row ``m`` of the ensemble's Parameter.

    Its own ``weight`` Parameter is unused; the module holding the connector owns the weights, so
    M seeds share one ``(M, n_weights)`` tensor as every model of this package does.
    """

    def forward(self, input_data: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        w = self.weight if weights is None else weights
        return QNNFunction.apply(input_data, w, self.neural_network)


class QNNLayer(nn.Module):
    """``M`` copies of a student circuit on a backend: features (M, B, F) -> read-out (M, B, n_out).

    Weights are initialised as the engine's ``QuantumLayer`` (:func:`~qkd_qiskit.circuits.initial_weights`), so a QNN student and an engine student built from the same generators
    start from the same point.
    """

    def __init__(self, student: Any, n_models: int, generators: Sequence[torch.Generator] | None,
                 dtype: torch.dtype, backend: Backend, gradient: Gradient = "auto"):
        super().__init__()
        gens = list(generators) if generators is not None else [None] * n_models
        if len(gens) != n_models:
            raise ValueError(f"QNNLayer: {len(gens)} generators for {n_models} models")
        self.student = student
        self.backend = backend
        self.gradient = gradient
        self.weights = nn.Parameter(initial_weights(len(student.weight_params), gens, dtype))
        self._connectors: list[RowConnector] | None = None
        self._mode: Any = None

    @property
    def n_outputs(self) -> int:
        return self.student.n_outputs

    def connectors(self) -> list[RowConnector]:
        """One TorchConnector per model (built on first use: transpilation happens once, here)."""
        if self._connectors is None:
            if isinstance(self.backend, IBMRuntimeBackend):
                mode = self.backend.open_mode()
                self._mode = mode.__enter__()
            seed = getattr(self.backend.profile, "seed", None)
            qnn = build_qnn(self.student, self.backend, self.gradient, seed, self._mode)
            self._connectors = [RowConnector(qnn) for _ in range(self.weights.shape[0])]
        return self._connectors

    def close(self) -> None:
        """Close the Runtime Batch/Session this layer opened (``ibm`` backends); a no-op otherwise."""
        if self._mode is not None and hasattr(self._mode, "close"):
            self._mode.close()
        self._mode, self._connectors = None, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.weights.shape[0]:
            raise ValueError(f"QNNLayer: expected features (M={self.weights.shape[0]}, B, F), got {tuple(x.shape)}")
        m, b, f = x.shape
        angles = self.student.input_angles(x.detach().reshape(m * b, f).double().cpu().numpy())
        angles = torch.as_tensor(np.asarray(angles)).reshape(m, b, -1)
        conns = self.connectors()  # identical per model; the trainer may have dropped stopped models
        outs = [conns[i](angles[i], self.weights[i]) for i in range(m)]
        return torch.stack(outs).to(self.weights.dtype)
