"""The density-matrix fast path of ``aer`` evaluation: the ISA circuit on its active qubits only, exact
noisy probabilities from one Aer run over all parameter bindings, read-out errors applied
classically, shots drawn with a seeded multinomial.

Example:
    >>> probs = np.array([[0.5, 0.25, 0.25, 0.0]])
    >>> flip0 = np.array([[0.0, 1.0], [1.0, 0.0]])  # bit 0 always read flipped
    >>> apply_readout_errors(probs, [flip0, np.eye(2)]).tolist()
    [[0.25, 0.5, 0.0, 0.25]]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from cachetools import LRUCache
from qiskit import QuantumCircuit

from ..readout import MEAS_REGISTER, measured_never_reused
from .batch import bindings
from .noise import measurement_noise_is_classical, readout_matrix, restrict_noise_model
from .transpile import Transpiled, active_qubits, compact


def sample_probs(probs: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Empirical frequencies of ``shots`` draws from each row of ``probs`` (seeded multinomial)."""
    rng = np.random.default_rng(seed)
    p = np.clip(probs, 0, None)
    p = p / p.sum(1, keepdims=True)
    return rng.multinomial(shots, p) / shots


def apply_readout_errors(probs: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Apply per-qubit assignment matrices ``P[measured, true]`` to probabilities (N, 2^k), the
    matrix of read-out bit ``j`` to bit ``j`` of the outcome index (:mod:`qkd_qiskit.readout`)."""
    k = len(matrices)
    t = probs.reshape(len(probs), *([2] * k))  # C order: bit j of the index is axis 1 + (k-1-j)
    for j, m in enumerate(matrices):
        t = np.moveaxis(np.tensordot(m, t, axes=([1], [k - j])), 0, k - j)
    return t.reshape(len(probs), 2**k)


MEMO_BYTES = 512 * 2**20
"""Bound of the process-wide memo of noisy probabilities (least recently used entries go first)."""

_MEMO = LRUCache(maxsize=MEMO_BYTES, getsizeof=lambda a: a.nbytes)


def memo_key(*parts: Any) -> bytes:
    """A content key for :func:`memoised`: strings name the path, circuit and noise; arrays are taken
    by dtype, shape and bytes (as float64)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.shape}".encode())
            h.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
        else:
            h.update(f"{part}|".encode())
    return h.digest()


def memoised(key: bytes, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A copy of the array memoised under ``key``, computed by ``compute()`` on a miss: the one memo of
    noisy read-out probabilities of this process, shared by the Aer density-matrix path
    (:meth:`Compacted.probabilities`) and the PTM path (:class:`qkd_qiskit.noisy.PtmSampler`), so
    calibrating then evaluating a unit, or evaluating it at several shot counts or mitigations,
    simulates each set of samples once. Keys name their path (the two paths agree to ~1e-9, not bit
    for bit). LRU by bytes (``cachetools.LRUCache``), at most :data:`MEMO_BYTES`.

    Example:
        >>> calls = []
        >>> key = memo_key("example", np.arange(3.0))
        >>> for _ in range(2):
        ...     _ = memoised(key, lambda: calls.append(1) or np.ones(2))
        >>> len(calls)
        1
    """
    hit = _MEMO.get(key)
    if hit is None:
        hit = compute()
        if hit.nbytes <= MEMO_BYTES:
            _MEMO[key] = hit.copy()
        return hit
    return hit.copy()


def circuit_digest(circuit: QuantumCircuit) -> str:
    """A content digest of a circuit: every instruction's name, qubits, clbits and parameters by name
    (so two builds of the same student, with distinct ``Parameter`` objects, have the same digest).

    Example:
        >>> a, b = QuantumCircuit(2), QuantumCircuit(2)
        >>> _ = a.cx(0, 1), b.cx(0, 1)
        >>> circuit_digest(a) == circuit_digest(b), circuit_digest(a) == circuit_digest(QuantumCircuit(2))
        (True, False)
    """
    h = hashlib.sha256(f"{circuit.num_qubits} {circuit.num_clbits}".encode())
    for inst in circuit.data:
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        clbits = [circuit.find_bit(c).index for c in inst.clbits]
        h.update(f"{inst.operation.name}{qubits}{clbits}{[str(p) for p in inst.operation.params]}\n".encode())
    return h.hexdigest()


@dataclass
class Compacted:
    """An ISA circuit cut down to its active physical qubits, plus the matching noise model.

    The fast evaluation path drops the measurements and saves the exact (noisy) probabilities of
    the read-out qubits from one density-matrix run over all parameter bindings; read-out errors
    are then applied classically per qubit. Dropping the mid-circuit measurements of q_nd students
    is exact here because a measured qubit is never touched again and its outcome is never read,
    so the measurement commutes with everything that follows. ``fast_path_ok`` is False (and the
    plain sampler is used) when that or the classical read-out model does not hold: a gate after
    a measurement, quantum noise on ``measure``, correlated read-out errors, or scheduled delays
    with idle relaxation noise (``relaxes_delays``: see
    :func:`qkd_qiskit.backends.devices.device_relaxes_delays`).
    """

    circuit: QuantumCircuit
    physical: tuple[int, ...]
    clbit_qubit: dict[int, int]
    noise_model: Any
    unitary: QuantumCircuit
    fast_path_ok: bool
    noise_key: str = ""
    """Names the noise model (device / file): with it, :meth:`probabilities` is memoised per process
    by content (circuit, noise, weights, inputs), so evaluating the same student at several shot
    counts, or calibrating and then evaluating it, runs each density-matrix simulation once."""
    _sim: Any = field(default=None, repr=False)
    _digest: str | None = field(default=None, repr=False)

    @classmethod
    def build(cls, transpiled: Transpiled, noise_model: Any, relaxes_delays: bool = False,
              records: list[dict] | None = None, noise_key: str = "") -> "Compacted":
        """Compact ``transpiled`` and restrict ``noise_model`` (its ``to_dict`` ``records`` if cached)."""
        isa = transpiled.circuit
        physical = active_qubits(isa)
        circuit, clbit_qubit = compact(isa, physical)
        unitary, _ = compact(isa, physical, drop_measures=True)
        nm = restrict_noise_model(noise_model, physical, records)
        delays = "delay" in isa.count_ops() and relaxes_delays
        ok = measured_never_reused(circuit) and measurement_noise_is_classical(nm) and not delays
        return cls(circuit, tuple(physical), clbit_qubit, nm, unitary, ok, noise_key)

    def readout_positions(self, student: Any) -> list[int]:
        """Compact qubit holding each read-out qubit at the end (from the final ``meas[q]`` writes)."""
        meas = next(reg for reg in self.circuit.cregs if reg.name == MEAS_REGISTER)
        return [self.clbit_qubit[self.circuit.find_bit(meas[q]).index] for q in student.readout_qubits]

    def probabilities(self, student: Any, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Exact noisy read-out distribution (N, 2^k): one density-matrix run, read-out errors applied
        (memoised per process when ``noise_key`` is set)."""
        positions = self.readout_positions(student)
        if not self.noise_key:
            return self._simulate(student, weights, angles, positions)
        if self._digest is None:
            self._digest = circuit_digest(self.unitary)
        key = memo_key("aer-density-matrix", self.noise_key, self._digest, positions, weights, angles)
        return memoised(key, lambda: self._simulate(student, weights, angles, positions))

    def _simulate(self, student: Any, weights: np.ndarray, angles: np.ndarray, positions: list[int]) -> np.ndarray:
        from qiskit_aer import AerSimulator

        qc = self.unitary.copy()
        qc.save_probabilities(positions, label="p")
        if self._sim is None:
            self._sim = AerSimulator(method="density_matrix", noise_model=self.noise_model, fusion_threshold=1,
                                     max_parallel_experiments=0, max_parallel_threads=0)
        binds = {p: v for ps, vals in bindings(qc, student, weights, angles).items()
                 for p, v in zip(ps, vals.T)}
        result = self._sim.run(qc, parameter_binds=[binds], shots=1).result()
        probs = np.array([result.data(i)["p"] for i in range(len(angles))], dtype=np.float64)
        return apply_readout_errors(probs, [readout_matrix(self.noise_model, q) for q in positions])
