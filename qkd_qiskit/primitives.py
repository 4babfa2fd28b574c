"""Qiskit V2 primitives and qiskit-machine-learning gradients backed by the exact torch engine.

The same compiled simulation as :mod:`qkd_qiskit.engine`, exposed behind the standard interfaces
so that stock qiskit-machine-learning code (``EstimatorQNN`` / ``SamplerQNN`` +
``TorchConnector``) trains at engine speed:

* :class:`EngineEstimator` (``BaseEstimatorV2``): exact expectation values (``stds`` = 0; the
  requested ``precision`` is met exactly, so it is ignored).
* :class:`EngineSampler` (``BaseSamplerV2``): with ``shots=None`` (default) each register's data is
  an :class:`ExactProbArray` and the data bin is an :class:`ExactDataBin` whose
  ``get_counts(i)`` returns the exact joint probabilities of all classical bits. That is the
  route ``SamplerQNN`` 0.9 reads first (``pub.data.get_counts(i)``, normalised by its sum), so
  ``SamplerQNN`` gets exact probabilities. A ``BitArray`` cannot hold exact probabilities; with
  integer ``shots`` the sampler draws real samples from the exact distribution and returns
  ordinary ``BitArray`` data.
* :class:`EngineEstimatorGradient` / :class:`EngineSamplerGradient`: exact gradients by the
  engine's autograd (one forward of the distinct rows and one backward batched over the
  observables/outcomes per call, not 2 circuits per parameter and row).

Circuits are compiled once and cached by identity. Parameters that are constant across the rows
of a call (the weights of a QNN batch; also recognised by the QNN's ``weights[...]`` names) are
treated as per-model weights, the rest as per-sample inputs, which is the engine's fast layout.
Mid-circuit measurements are exact by deferred measurement (a measured qubit must stay idle).

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

import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import (
    BaseEstimatorV2,
    BasePrimitiveJob,
    BaseSamplerV2,
    BitArray,
    DataBin,
    PrimitiveResult,
    PubResult,
    SamplerPubResult,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.providers import JobStatus, Options
from qiskit.quantum_info import Pauli, SparsePauliOp
from qiskit_machine_learning.gradients import (
    BaseEstimatorGradient,
    BaseSamplerGradient,
    EstimatorGradientResult,
    SamplerGradientResult,
)
from qiskit_machine_learning.gradients.utils import DerivativeType

from .engine import CompiledCircuit, Mode, compile_circuit

__all__ = [
    "EngineEstimator",
    "EngineEstimatorGradient",
    "EngineSampler",
    "EngineSamplerGradient",
    "ExactDataBin",
    "ExactProbArray",
]

_MAX_ROWS = 1 << 14  # rows of one batched gradient pass (memory bound for large registers)


# --------------------------------------------------------------------------------------------------
# Jobs and result containers
# --------------------------------------------------------------------------------------------------


class _DoneJob(BasePrimitiveJob):
    """A job that already ran synchronously (no thread pool: the engine call is ~1 ms)."""

    def __init__(self, result: Any):
        super().__init__(job_id=str(uuid.uuid4()))
        self._result = result

    def result(self) -> Any:
        return self._result

    def status(self) -> JobStatus:
        return JobStatus.DONE

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def in_final_state(self) -> bool:
        return True

    def cancel(self) -> None:
        return None


def _bitstring(value: int, width: int) -> str:
    return format(value, f"0{width}b") if width else ""


class ExactProbArray:
    """Exact outcome probabilities of one classical register, shaped like the pub.

    Mirrors the read side of :class:`~qiskit.primitives.BitArray`: ``get_counts(loc)`` returns
    ``{bitstring: probability}`` (summed over locations when ``loc`` is None, like counts over
    all shots), ``get_int_counts`` the same with integer keys, ``get_probabilities(loc)`` the
    dense array. ``num_shots`` is None: these are probabilities, not samples.
    """

    num_shots = None

    def __init__(self, probabilities: np.ndarray, num_bits: int):
        self._probs = probabilities
        self.num_bits = num_bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self._probs.shape[:-1]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def get_probabilities(self, loc: int | tuple[int, ...] | None = None) -> np.ndarray:
        if loc is None:
            return self._probs.reshape(-1, self._probs.shape[-1]).sum(0)
        return self._probs[loc]

    def get_int_counts(self, loc: int | tuple[int, ...] | None = None) -> dict[int, float]:
        p = self.get_probabilities(loc)
        return {int(k): float(p[k]) for k in np.flatnonzero(p)}

    def get_counts(self, loc: int | tuple[int, ...] | None = None) -> dict[str, float]:
        return {_bitstring(k, self.num_bits): v for k, v in self.get_int_counts(loc).items()}

    def __repr__(self) -> str:
        return f"ExactProbArray(<shape={self.shape}, num_bits={self.num_bits}>)"


class ExactDataBin(DataBin):
    """Data bin of an exact sampler result: one :class:`ExactProbArray` per register, plus the
    joint distribution of all classical bits (bit ``c`` of the key = ``circuit.clbits[c]``)."""

    def __init__(self, joint: ExactProbArray, *, shape: tuple[int, ...] = (), **registers: Any):
        super().__init__(shape=shape, **registers)
        object.__setattr__(self, "_joint", joint)

    def get_counts(self, loc: int | tuple[int, ...] | None = None) -> dict[str, float]:
        """Exact joint probabilities ``{bitstring: p}`` (what ``SamplerQNN`` reads first)."""
        return self._joint.get_counts(loc)

    def get_int_counts(self, loc: int | tuple[int, ...] | None = None) -> dict[int, float]:
        return self._joint.get_int_counts(loc)

    def get_probabilities(self, loc: int | tuple[int, ...] | None = None) -> np.ndarray:
        return self._joint.get_probabilities(loc)


# --------------------------------------------------------------------------------------------------
# Shared core: compile cache, parameter partition, observables
# --------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """A circuit's parameters, chosen input/weight split and compiled program."""

    ref: weakref.ref
    params: list[Parameter]
    wcols: np.ndarray  # columns (in circuit.parameters order) used as per-model weights
    icols: np.ndarray
    program: CompiledCircuit
    sticky: bool  # derived from a multi-row call or from parameter names


class _Engine:
    """Compile cache + state evaluation shared by the primitives and their gradients."""

    def __init__(self, dtype: torch.dtype, device: torch.device | str | None, mode: Mode):
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.mode = mode
        self._entries: dict[int, _Entry] = {}
        self._params: dict[int, tuple[weakref.ref, list[Parameter]]] = {}
        self._index: dict[int, tuple[list[Parameter], dict[Parameter, int]]] = {}

    def parameters(self, circuit: QuantumCircuit) -> list[Parameter]:
        hit = self._params.get(id(circuit))
        if hit is None or hit[0]() is not circuit:
            hit = (weakref.ref(circuit), list(circuit.parameters))
            self._params[id(circuit)] = hit
        return hit[1]

    def parameter_index(self, circuit: QuantumCircuit) -> dict[Parameter, int]:
        """Column of each parameter of ``circuit`` (cached with the parameter list)."""
        params = self.parameters(circuit)
        hit = self._index.get(id(circuit))
        if hit is None or hit[0] is not params:
            hit = (params, {p: i for i, p in enumerate(params)})
            self._index[id(circuit)] = hit
        return hit[1]

    def entry(self, circuit: QuantumCircuit, values: np.ndarray) -> _Entry:
        """Program for ``circuit`` with weight columns constant over the rows of ``values``."""
        params = self.parameters(circuit)
        n_rows = values.shape[0]
        const = np.all(values == values[:1], axis=0) if n_rows > 1 else np.ones(len(params), bool)
        hit = self._entries.get(id(circuit))
        if hit is not None and hit.ref() is circuit and (const[hit.wcols].all() or not n_rows):
            if hit.sticky or n_rows <= 1:
                return hit
        by_name = np.array([p.name.startswith("weights[") for p in params], dtype=bool)
        if by_name.any() and const[by_name].all():
            wmask, sticky = by_name, True
        else:
            wmask, sticky = const, n_rows > 1
        wcols, icols = np.flatnonzero(wmask), np.flatnonzero(~wmask)
        program = compile_circuit(circuit, [params[i] for i in icols], [params[i] for i in wcols],
                                  readout_qubits=(), readout="z", mode=self.mode)
        entry = _Entry(weakref.ref(circuit), params, wcols, icols, program, sticky)
        if len(self._entries) > 512:
            self._entries.clear()
        self._entries[id(circuit)] = entry
        return entry

    def tensors(self, entry: _Entry, values: np.ndarray, per_row: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(angles, weights): (1, N, n_in) and (1, n_w), or per row (N, 1, n_in) and (N, n_w)."""
        v = torch.as_tensor(values, dtype=self.dtype, device=self.device)
        angles = v[:, entry.icols]
        if per_row:
            angles, weights = angles.unsqueeze(1), v[:, entry.wcols]
        else:
            angles, weights = angles.unsqueeze(0), v[:1, entry.wcols]
        return angles, weights

    def states(self, circuit: QuantumCircuit, values: np.ndarray) -> tuple[torch.Tensor, _Entry]:
        """Final states ``(N, 2^n)`` of ``circuit`` at ``values`` (N, P); no autograd."""
        entry = self.entry(circuit, values)
        with torch.no_grad():
            angles, weights = self.tensors(entry, values, per_row=False)
            return entry.program.state(angles, weights)[0], entry


def _values_array(values: Any, n_params: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, n_params) if n_params else arr.reshape(-1, 0)
    if arr.ndim != 2 or arr.shape[1] != n_params:
        raise ValueError(f"expected parameter values (N, {n_params}), got shape {arr.shape}")
    return arr


# Observables: sums of Pauli strings, evaluated on batched states in torch (differentiable).

_PROJECTORS = {"0": ("I", "Z", 1), "1": ("I", "Z", -1), "+": ("I", "X", 1), "-": ("I", "X", -1),
               "r": ("I", "Y", 1), "l": ("I", "Y", -1)}


def _expand_label(label: str, coeff: complex) -> list[tuple[str, complex]]:
    """Rewrite projector letters (0 1 + - r l) as (I +- P)/2 so every term is a Pauli string."""
    terms = [("", complex(coeff))]
    for ch in label:
        if ch in _PROJECTORS:
            a, b, sign = _PROJECTORS[ch]
            terms = [(t + a, c / 2) for t, c in terms] + [(t + b, c * sign / 2) for t, c in terms]
        elif ch in "IXYZ":
            terms = [(t + ch, c) for t, c in terms]
        else:
            raise ValueError(f"unsupported observable letter {ch!r} in {label!r}")
    return terms


class _Observable:
    """Compiled ``sum_t c_t P_t``: a diagonal vector for I/Z terms, masks for X/Y terms."""

    def __init__(self, terms: dict[str, complex], n: int):
        idx = np.arange(2**n)
        bits = (idx[:, None] >> np.arange(n)[None, :]) & 1
        self.diag = np.zeros(2**n, dtype=complex)
        offdiag: dict[int, np.ndarray] = {}
        for label, coeff in terms.items():
            for pauli, c in _expand_label(label, coeff):
                factor, xmask = np.full(2**n, c, dtype=complex), 0
                for q, ch in enumerate(reversed(pauli)):  # labels are big-endian
                    if ch in "XY":
                        xmask |= 1 << q
                    if ch in "YZ":
                        factor *= 1 - 2 * bits[:, q]
                    if ch == "Y":
                        factor *= 1j
                if xmask:
                    offdiag[xmask] = offdiag.get(xmask, 0) + factor
                else:
                    self.diag += factor
        if np.abs(self.diag.imag).max(initial=0) > 1e-12:
            raise ValueError("observable is not Hermitian (complex diagonal)")
        self.offdiag = [(idx ^ x, f) for x, f in offdiag.items()]
        self._t: dict[tuple, tuple] = {}

    def tensors(self, psi: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(real diagonal, [(partner index, factor)]) in the dtype/device of ``psi`` (cached)."""
        key = (psi.dtype, psi.device)
        if key not in self._t:
            real = torch.float64 if psi.dtype == torch.complex128 else torch.float32
            self._t[key] = (
                torch.as_tensor(self.diag.real, dtype=real, device=psi.device),
                [(torch.as_tensor(p, device=psi.device), torch.as_tensor(f, dtype=psi.dtype, device=psi.device))
                 for p, f in self.offdiag],
            )
        return self._t[key]

    def expectation(self, psi: torch.Tensor) -> torch.Tensor:
        """Real ``<psi|O|psi>`` for states ``(..., 2^n)`` (autograd-safe)."""
        return _expectations(psi, [self])[..., 0]


def _expectations(psi: torch.Tensor, obs: Sequence[_Observable]) -> torch.Tensor:
    """``<psi|O_k|psi>`` for states ``(..., 2^n)``: ``(..., K)``. The diagonal parts of all K
    observables are one matmul (cheaper to differentiate, and batchable by ``is_grads_batched``)."""
    parts = [o.tensors(psi) for o in obs]
    probs = torch.view_as_real(psi).square().sum(-1) if psi.is_complex() else psi.square()
    out = probs @ torch.stack([diag for diag, _ in parts], -1)
    if any(off for _, off in parts):
        extra = [sum(((psi[..., perm].conj() * f * psi).sum(-1).real for perm, f in off), probs.new_zeros(()))
                 for _, off in parts]
        out = out + torch.stack([e.expand(out.shape[:-1]) for e in extra], -1)
    return out


class _ObservableCache:
    """Compiled observables by identity (operators) or by content (ObservablesArray dicts)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, _Observable]] = {}
        self._by_key: dict[tuple, _Observable] = {}

    def get(self, obs: Any, n: int) -> _Observable:
        if isinstance(obs, dict):
            key = (n, tuple(sorted((k, complex(v)) for k, v in obs.items())))
            if key not in self._by_key:
                self._by_key[key] = _Observable(dict(obs), n)
            return self._by_key[key]
        hit = self._by_id.get(id(obs))
        if hit is None or hit[0] is not obs:
            if len(self._by_id) > 1024:
                self._by_id.clear()
            hit = (obs, self.get(_as_dict(obs), n))
            self._by_id[id(obs)] = hit
        return hit[1]


def _as_dict(obs: Any) -> dict[str, complex]:
    if isinstance(obs, str):
        return {obs: 1.0}
    if isinstance(obs, Pauli):
        obs = SparsePauliOp(obs)
    if isinstance(obs, SparsePauliOp):
        return {label: complex(c) for label, c in obs.to_list()}
    if isinstance(obs, dict):
        return obs
    return _as_dict(SparsePauliOp.from_operator(obs))


# --------------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------------


class EngineEstimator(BaseEstimatorV2):
    """Exact ``BaseEstimatorV2`` on the torch engine (float64 by default).

    Pubs sharing a circuit and parameter values (``EstimatorQNN`` sends one pub per observable)
    are simulated once per ``run`` call.
    """

    def __init__(self, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 default_precision: float = 0.0, mode: Mode = "auto"):
        self._engine = _Engine(dtype, device, mode)
        self._observables = _ObservableCache()
        self._default_precision = default_precision
        self.options = Options()

    @property
    def default_precision(self) -> float:
        return self._default_precision

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> _DoneJob:
        precision = self._default_precision if precision is None else precision
        states: dict[tuple, torch.Tensor] = {}
        results = [self._run_pub(pub, precision, states) for pub in pubs]
        return _DoneJob(PrimitiveResult(results, metadata={"version": 2}))

    def _run_pub(self, pub: Any, precision: float, states: dict) -> PubResult:
        circuit, obs_list, oshape, values, pshape = self._parse(pub, precision)
        key = (id(circuit), values.shape, hash(values.tobytes()))
        if key not in states:
            states[key] = self._engine.states(circuit, values)[0]
        psi = states[key]
        n = circuit.num_qubits
        evs = np.stack([self._observables.get(o, n).expectation(psi).cpu().numpy() for o in obs_list])
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
            values = _values_array(pub[2], len(self._engine.parameters(circuit)))
            return circuit, [pub[1]], (), values, (values.shape[0],)
        pub = EstimatorPub.coerce(pub, precision)
        circuit = pub.circuit
        obs = pub.observables
        params = self._engine.parameters(circuit)
        pv = pub.parameter_values
        values = pv.as_array(params).reshape(-1, len(params)) if params else np.zeros((1, 0))
        pshape = pv.shape if params else ()
        if params and values.shape[0] == 0:
            raise ValueError("EngineEstimator: empty parameter values")
        return circuit, list(obs.ravel().tolist()) if obs.shape else [obs.tolist()], obs.shape, \
            values, pshape


# --------------------------------------------------------------------------------------------------
# Sampler
# --------------------------------------------------------------------------------------------------


class EngineSampler(BaseSamplerV2):
    """Exact ``BaseSamplerV2`` on the torch engine.

    ``shots=None`` (the default) returns exact probabilities (:class:`ExactDataBin`); an integer
    number of shots draws samples from the exact distribution into ordinary ``BitArray`` data.
    Classical bits never written by a measurement read 0; a qubit measured mid-circuit must not be
    acted on afterwards.
    """

    def __init__(self, *, default_shots: int | None = None, seed: int | np.random.Generator | None = None,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 mode: Mode = "auto"):
        self._engine = _Engine(dtype, device, mode)
        self._default_shots = default_shots
        self._rng = np.random.default_rng(seed)
        self.options = Options()

    @property
    def default_shots(self) -> int | None:
        return self._default_shots

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> _DoneJob:
        shots = self._default_shots if shots is None else shots
        results = [self._run_pub(pub, shots) for pub in pubs]
        return _DoneJob(PrimitiveResult(results, metadata={"version": 2}))

    def distribution(self, circuit: QuantumCircuit, values: np.ndarray) -> np.ndarray:
        """Exact joint clbit distribution ``(N, 2^num_clbits)`` at parameter values (N, P)."""
        values = _values_array(values, len(self._engine.parameters(circuit)))
        entry = self._engine.entry(circuit, values)
        with torch.no_grad():
            angles, weights = self._engine.tensors(entry, values, per_row=False)
            probs = entry.program.probabilities(angles, weights)[0]
        return (probs @ _clbit_map(entry.program, probs)).cpu().numpy()

    def _run_pub(self, pub: Any, shots: int | None) -> SamplerPubResult:
        circuit, values, pshape, shots = self._parse(pub, shots)
        dist = self.distribution(circuit, values).reshape(*pshape, -1)
        meta = {"shots": shots, "exact": shots is None, "circuit_metadata": circuit.metadata}
        if shots is None:
            regs = {creg.name: ExactProbArray(_register_marginal(dist, circuit, creg), creg.size)
                    for creg in circuit.cregs}
            data = ExactDataBin(ExactProbArray(dist, circuit.num_clbits), shape=pshape, **regs)
        else:
            data = DataBin(shape=pshape, **self._sample(dist, circuit, shots))
        return SamplerPubResult(data, metadata=meta)

    def _parse(self, pub: Any, shots: int | None) -> tuple:
        if (isinstance(pub, tuple) and len(pub) == 2 and isinstance(pub[0], QuantumCircuit)
                and isinstance(pub[1], np.ndarray) and pub[1].ndim == 2):
            values = _values_array(pub[1], len(self._engine.parameters(pub[0])))
            return pub[0], values, (values.shape[0],), shots
        pub = SamplerPub.coerce(pub, shots)
        params = self._engine.parameters(pub.circuit)
        pv = pub.parameter_values
        values = pv.as_array(params).reshape(-1, len(params)) if params else np.zeros((1, 0))
        return pub.circuit, values, (pv.shape if params else ()), pub.shots

    def _sample(self, dist: np.ndarray, circuit: QuantumCircuit, shots: int) -> dict[str, BitArray]:
        """Shot-based fallback: sample outcomes, then split the clbits into registers."""
        flat = dist.reshape(-1, dist.shape[-1])
        samples = np.stack([self._rng.choice(flat.shape[1], size=shots, p=p / p.sum()) for p in flat])
        out = {}
        for creg in circuit.cregs:
            pos = [circuit.find_bit(b).index for b in creg]
            vals = np.zeros_like(samples)
            for j, c in enumerate(pos):
                vals |= ((samples >> c) & 1) << j
            arr = np.stack([BitArray.from_samples(v.tolist(), creg.size).array for v in vals])
            out[creg.name] = BitArray(arr.reshape(*dist.shape[:-1], shots, -1), creg.size)
        return out


_CLBIT_MAPS: dict[tuple, tuple[weakref.ref, torch.Tensor]] = {}


def _clbit_map(program: CompiledCircuit, like: torch.Tensor) -> torch.Tensor:
    """One-hot (2^n, 2^c): basis state -> joint clbit outcome (deferred measurement); cached."""
    key = (id(program), like.dtype, like.device)
    hit = _CLBIT_MAPS.get(key)
    if hit is None or hit[0]() is not program:
        if len(_CLBIT_MAPS) > 256:
            _CLBIT_MAPS.clear()
        hit = (weakref.ref(program), _clbit_matrix(program, like))
        _CLBIT_MAPS[key] = hit
    return hit[1]


def _clbit_matrix(program: CompiledCircuit, like: torch.Tensor) -> torch.Tensor:
    n, c = program.n_qubits, program.n_clbits
    idx = np.arange(2**n)
    out = np.zeros(2**n, dtype=np.int64)
    for clbit, qubit in program.clbit_qubits.items():
        out |= ((idx >> qubit) & 1) << clbit
    mat = np.zeros((2**n, 2**c))
    mat[idx, out] = 1.0
    return torch.as_tensor(mat, dtype=like.dtype, device=like.device)


def _register_marginal(dist: np.ndarray, circuit: QuantumCircuit, creg: Any) -> np.ndarray:
    pos = [circuit.find_bit(b).index for b in creg]
    outcomes = np.arange(dist.shape[-1])
    reg = np.zeros_like(outcomes)
    for j, c in enumerate(pos):
        reg |= ((outcomes >> c) & 1) << j
    onehot = np.zeros((dist.shape[-1], 2**creg.size))
    onehot[outcomes, reg] = 1.0
    return dist @ onehot


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------


def _group_rows(circuits: Sequence[QuantumCircuit]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(circuits):
        groups.setdefault(id(c), []).append(i)
    return groups


def _take_rows(values: Sequence[Sequence[float]] | np.ndarray, rows: list[int]) -> Any:
    """``values[rows]`` without a Python loop in the common case (an array, all rows in order)."""
    if isinstance(values, np.ndarray):
        return values if len(rows) == len(values) and rows[-1] == len(rows) - 1 else values[rows]
    return [values[r] for r in rows]


def _requested_columns(engine: _Engine, circuit: QuantumCircuit, parameters: Sequence[Sequence[Parameter]],
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


class EngineEstimatorGradient(BaseEstimatorGradient):
    """Exact estimator gradients by autograd through the engine (``DerivativeType.REAL``).

    ``EstimatorQNN`` sends its batch once per observable; each distinct parameter row is simulated
    once (as its own model) and all observables are differentiated in one backward pass batched
    over them, so a call costs about one forward and two backward passes, not one per row.
    """

    def __init__(self, estimator: EngineEstimator | None = None, options: Options | None = None,
                 derivative_type: DerivativeType = DerivativeType.REAL):
        if derivative_type != DerivativeType.REAL:
            raise NotImplementedError("EngineEstimatorGradient: only DerivativeType.REAL is supported")
        estimator = estimator if estimator is not None else EngineEstimator()
        if not isinstance(estimator, EngineEstimator):
            raise TypeError("EngineEstimatorGradient needs an EngineEstimator")
        super().__init__(estimator, options, derivative_type)

    def run(self, circuits: Sequence[QuantumCircuit], observables: Sequence[Any],
            parameter_values: Sequence[Sequence[float]] | np.ndarray,
            parameters: Sequence[Sequence[Parameter] | None] | None = None, **options: Any) -> _DoneJob:
        """Same contract as the base class, evaluated synchronously (validation per circuit, not
        per row: ``EstimatorQNN`` sends batch x observables rows of the same circuit)."""
        if isinstance(circuits, QuantumCircuit):
            circuits = (circuits,)
        if not isinstance(observables, (list, tuple)):
            observables = (observables,)
        if len(circuits) != len(parameter_values) or len(circuits) != len(observables):
            raise ValueError("gradient: circuits, observables and parameter values differ in length")
        if parameters is None:
            parameters = [None] * len(circuits)
        parameters = [p if p is not None else self._estimator._engine.parameters(circuits[i])
                      for i, p in enumerate(parameters)]
        return _DoneJob(self._run(circuits, observables, parameter_values, parameters, **options))

    def _run(self, circuits: Sequence[QuantumCircuit], observables: Sequence[Any],
             parameter_values: Sequence[Sequence[float]] | np.ndarray,
             parameters: Sequence[Sequence[Parameter]], **options: Any) -> EstimatorGradientResult:
        engine: _Engine = self._estimator._engine
        obs_cache: _ObservableCache = self._estimator._observables
        gradients: list[np.ndarray | None] = [None] * len(circuits)
        columns: dict = {}
        for rows in _group_rows(circuits).values():
            circuit = circuits[rows[0]]
            n = circuit.num_qubits
            values = _values_array(_take_rows(parameter_values, rows), len(engine.parameters(circuit)))
            cols = _requested_columns(engine, circuit, parameters, rows, columns)
            # EstimatorQNN tiles its batch once per observable: simulate each distinct row once
            # and differentiate every distinct observable on it in one batched backward pass.
            uniq, row_of = _unique_rows(values)
            seen: dict[int, int] = {}  # id of the caller's observable -> index in `distinct`
            distinct: list[_Observable] = []
            obs_of = np.empty(len(rows), dtype=np.int64)
            for k, r in enumerate(rows):
                j = seen.get(id(observables[r]))
                if j is None:
                    j = seen[id(observables[r])] = len(distinct)
                    distinct.append(obs_cache.get(observables[r], n))
                obs_of[k] = j
            step = max(1, _MAX_ROWS // len(distinct))
            same_cols = all(c is cols[0] for c in cols)  # the QNN case: one parameter list
            wanted = np.zeros(values.shape[1], dtype=bool)
            wanted[cols[0] if same_cols else np.concatenate(cols)] = True
            outputs = _expectation_outputs(distinct)
            jac = np.concatenate([_jacobian(engine, circuit, uniq[s:s + step], wanted, outputs)
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


def _unique_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows in first-seen order, index of each row's distinct row); hashing the row bytes
    is ~10x faster than ``np.unique(axis=0)`` for the few hundred rows of a QNN call."""
    first: dict[bytes, int] = {}
    row_of = np.array([first.setdefault(row.tobytes(), len(first)) for row in values], dtype=np.int64)
    return values[list(first.values())] if len(first) < len(values) else values, row_of


def _jacobian(engine: _Engine, circuit: QuantumCircuit, values: np.ndarray, wanted: np.ndarray,
              outputs: Any) -> np.ndarray:
    """d outputs / d values, (N, K, P) in circuit.parameters order (zero outside ``wanted``), for
    independent rows (each row is its own model): one forward pass, then ONE backward pass batched
    over the K outputs (``is_grads_batched``), so the cost barely grows with K.
    ``outputs(program, angles, weights) -> (N, K)``. Only the wanted side (inputs and/or weights)
    is differentiated."""
    entry = engine.entry(circuit, values)
    with torch.enable_grad():  # TorchConnector calls us from inside a backward (grad disabled)
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


def _expectation_outputs(obs: list[_Observable]) -> Any:
    def outputs(program: CompiledCircuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return _expectations(program.state(angles, weights)[:, 0], obs)

    return outputs


class EngineSamplerGradient(BaseSamplerGradient):
    """Exact gradients of the joint clbit distribution by autograd through the engine.

    Each row is an independent model; one forward and one backward pass batched over the outcomes
    give the full Jacobian. Outcomes are restricted to the clbits actually written by measurements.
    """

    def __init__(self, sampler: EngineSampler | None = None, options: Options | None = None):
        sampler = sampler if sampler is not None else EngineSampler()
        if not isinstance(sampler, EngineSampler):
            raise TypeError("EngineSamplerGradient needs an EngineSampler")
        super().__init__(sampler, options)

    def run(self, circuits: Sequence[QuantumCircuit], parameter_values: Sequence[Sequence[float]],
            parameters: Sequence[Sequence[Parameter] | None] | None = None, **options: Any) -> _DoneJob:
        if isinstance(circuits, QuantumCircuit):
            circuits = (circuits,)
        if len(circuits) != len(parameter_values):
            raise ValueError("gradient: circuits and parameter values differ in length")
        if parameters is None:
            parameters = [None] * len(circuits)
        parameters = [p if p is not None else self._sampler._engine.parameters(circuits[i])
                      for i, p in enumerate(parameters)]
        return _DoneJob(self._run(circuits, parameter_values, parameters, **options))

    def _run(self, circuits: Sequence[QuantumCircuit], parameter_values: Sequence[Sequence[float]],
             parameters: Sequence[Sequence[Parameter]], **options: Any) -> SamplerGradientResult:
        engine: _Engine = self._sampler._engine
        gradients: list[Any] = [None] * len(circuits)
        columns: dict = {}
        for rows in _group_rows(circuits).values():
            circuit = circuits[rows[0]]
            values = _values_array(_take_rows(parameter_values, rows), len(engine.parameters(circuit)))
            cols = _requested_columns(engine, circuit, parameters, rows, columns)
            outcomes = _written_outcomes(engine.entry(circuit, values).program)
            wanted = np.zeros(values.shape[1], dtype=bool)
            wanted[np.concatenate(cols)] = True
            outputs = _outcome_outputs(outcomes)
            step = max(1, _MAX_ROWS // len(outcomes))
            full = np.concatenate([_jacobian(engine, circuit, values[s:s + step], wanted, outputs)
                                   for s in range(0, len(values), step)])
            for i, r in enumerate(rows):
                jac = full[i][:, cols[i]]  # (outcomes, requested params)
                gradients[r] = [{int(o): float(jac[j, p]) for j, o in enumerate(outcomes)}
                                for p in range(jac.shape[1])]
        metadata = [{"parameters": p} for p in parameters]
        return SamplerGradientResult(gradients=gradients, metadata=metadata, options=Options(**options))


def _written_outcomes(program: CompiledCircuit) -> np.ndarray:
    """Joint clbit outcomes that can occur (unwritten clbits are always 0)."""
    bits = sorted(program.clbit_qubits)
    outs = np.zeros(2 ** len(bits), dtype=np.int64)
    for j, c in enumerate(bits):
        outs |= ((np.arange(2 ** len(bits)) >> j) & 1) << c
    return outs


def _outcome_outputs(outcomes: np.ndarray) -> Any:
    """Probabilities of the given joint clbit outcomes, (N, K)."""
    def outputs(program: CompiledCircuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        probs = program.probabilities(angles, weights)[:, 0]
        dist = probs @ _clbit_map(program, probs)
        return dist[:, torch.as_tensor(outcomes, device=dist.device)]

    return outputs
