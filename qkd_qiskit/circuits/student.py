"""A student circuit: embedding + (H layer) + ansatz with its parameters and read-out, built by name;
and the circuit-side conventions every simulator reads (measurement-free copy, weight initialisation).

Example:
    >>> st = build_student("q2")
    >>> st.readout, st.readout_qubits, st.n_outputs
    ('probs', (4, 5), 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from qiskit.circuit import ClassicalRegister, Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from ..readout import MEAS_REGISTER, counts_distribution, measured_never_reused
from .ansatzes import hea, q_nd, rot_layers, universal
from .approx_embedding import approx_amplitude_angles, approx_amplitude_embedding
from .embeddings import amplitude_angles, angle_angles, encoding_capacity
from .embeddings import embedding as embedding_circuit


@dataclass(frozen=True)
class StudentCircuit:
    """A quantum student: embedding + (H layer) + ansatz, with its parameters and read-out.

    ``readout == "z"``: one <Z_q> per read-out qubit. ``readout == "probs"``: probabilities of the
    ``2**k`` outcomes of the read-out qubits, outcome index ``sum_j bit(readout_qubits[j]) << j``.

    Example:
        >>> st = build_student("universal")
        >>> st.n_outputs, st.head_params(3), len(st.weight_params)
        (6, 21, 90)
    """

    name: str
    circuit: QuantumCircuit
    input_params: tuple[Parameter, ...]
    weight_params: tuple[Parameter, ...]
    readout_qubits: tuple[int, ...]
    readout: str
    n_features: int
    n_qubits: int
    layers: int
    encoding: str = "amplitude"
    embedding_terms: tuple[int, ...] | None = None
    """The kept Walsh terms of an approximate amplitude embedding (:mod:`.approx_embedding`), or
    ``None`` for the exact embedding."""

    def input_angles(self, x: Any) -> Any:
        """Bind values for ``input_params`` of a numpy/torch (B, F) batch, F <= n_features."""
        if self.embedding_terms is not None:
            return approx_amplitude_angles(x, self.n_qubits, self.embedding_terms, max_features=self.n_features)
        if self.encoding == "amplitude":
            return amplitude_angles(x, self.n_qubits, max_features=self.n_features)
        return angle_angles(x, len(self.input_params), max_features=self.n_features)

    @property
    def n_outputs(self) -> int:
        k = len(self.readout_qubits)
        return k if self.readout == "z" else 2**k

    def head_params(self, n_classes: int) -> int:
        """Parameters of the linear head n_outputs -> n_classes (weights + bias)."""
        return self.n_outputs * n_classes + n_classes

    def measured_circuit(self) -> QuantumCircuit:
        """Copy with final measurements of the read-out qubits, qubit q -> ``meas[q]``."""
        qc = self.circuit.copy()
        if MEAS_REGISTER not in [creg.name for creg in qc.cregs]:
            qc.add_register(ClassicalRegister(self.n_qubits, MEAS_REGISTER))
        meas = next(creg for creg in qc.cregs if creg.name == MEAS_REGISTER)
        for q in self.readout_qubits:
            qc.measure(q, meas[q])
        return qc

    def observables(self) -> list[SparsePauliOp]:
        """One ``Z_q`` observable (on all n qubits) per read-out qubit."""
        return [
            SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=self.n_qubits)
            for q in self.readout_qubits
        ]


def _ansatz(name: str, n_qubits: int, layers: int) -> tuple[QuantumCircuit, bool, tuple[int, ...]]:
    """(ansatz, H layer?, read-out qubits) of an architecture name."""
    if name == "hea":
        return hea(n_qubits, layers), False, tuple(range(n_qubits))
    if name in ("universal", "universal_h"):
        return universal(n_qubits, layers), name == "universal_h", tuple(range(n_qubits))
    if name == "rot_layers":
        return rot_layers(n_qubits, layers), False, tuple(range(n_qubits))
    if name.startswith("q") and name[1:].isdigit() and 2 <= int(name[1:]) < n_qubits:
        n_d = int(name[1:])
        return q_nd(n_qubits, n_d, layers), False, tuple(range(n_qubits - n_d, n_qubits))
    valid = ("hea", "universal", "universal_h") + tuple(f"q{d}" for d in range(2, n_qubits))
    raise ValueError(f"unknown architecture {name!r} for {n_qubits} qubits; valid: {', '.join(valid)}")


def build_student(
    name: str, n_qubits: int = 6, layers: int = 5, n_features: int | None = None,
    encoding: str = "amplitude", embedding_terms: Sequence[int] | None = None,
) -> StudentCircuit:
    """Build a student circuit by architecture name (see :data:`ARCHITECTURES`, plus ``rot_layers``).

    ``n_features`` (default: the encoding's capacity, ``2**n_qubits`` for amplitude) is the longest
    input accepted; shorter ones are padded. ``encoding``: one of :data:`ENCODINGS`.
    ``embedding_terms`` (amplitude encoding only): build the approximate embedding that keeps these
    Walsh terms (:func:`~qkd_qiskit.circuits.approx_embedding.select_terms`) instead of the exact one.

    Example:
        >>> st = build_student("q2")
        >>> st.readout, st.readout_qubits, st.n_outputs, len(st.weight_params) + st.head_params(3)
        ('probs', (4, 5), 4, 74)
    """
    cap = encoding_capacity(encoding, n_qubits)
    if n_features is None:
        n_features = cap
    if not 1 <= n_features <= cap:
        raise ValueError(f"build_student: n_features={n_features} does not fit in {n_qubits} qubits "
                         f"({encoding} encoding takes at most {cap})")
    ansatz, h_layer, readout_qubits = _ansatz(name, n_qubits, layers)
    if embedding_terms is not None and encoding != "amplitude":
        raise ValueError(f"build_student: embedding_terms need the amplitude encoding, not {encoding}")
    terms = None if embedding_terms is None else tuple(sorted({int(t) for t in embedding_terms}))
    embedding = (embedding_circuit(encoding, n_qubits) if terms is None
                 else approx_amplitude_embedding(n_qubits, terms))
    qc = QuantumCircuit(*ansatz.qregs, *ansatz.cregs, name=name)
    qc.compose(embedding, inplace=True)
    if h_layer:
        qc.h(range(n_qubits))
    qc.compose(ansatz, inplace=True)
    return StudentCircuit(
        name=name,
        circuit=qc,
        input_params=tuple(embedding.parameters),
        weight_params=tuple(ansatz.parameters),
        readout_qubits=readout_qubits,
        readout="probs" if name.startswith("q") else "z",
        n_features=n_features,
        n_qubits=n_qubits,
        layers=layers,
        encoding=encoding,
        embedding_terms=terms,
    )


def without_measurements(circuit: QuantumCircuit) -> QuantumCircuit:
    """Unitary part of a circuit (all measurements dropped, classical bits kept).

    Exact for simulation only when a measured qubit is never acted on again (as in q_nd; checked
    here by :func:`~qkd_qiskit.readout.measured_never_reused`): then the read-out distribution is the
    marginal of this circuit's state on the read-out qubits (deferred measurement).
    """
    if not measured_never_reused(circuit):
        raise ValueError(f"without_measurements: {circuit.name}: a measured qubit is used again, so its "
                         "measurement cannot be deferred")
    qc = circuit.copy_empty_like()
    for inst in circuit.data:
        if inst.operation.name != "measure":
            qc.append(inst)
    return qc


def readout_distribution(student: StudentCircuit, counts: Mapping[str, int]) -> np.ndarray:
    """Empirical read-out probabilities (``2**k``) from counts of ``student.measured_circuit()``.

    ``counts`` keys are ``meas`` bitstrings (meas[n-1] leftmost, as Qiskit prints them); only the
    read-out qubits' bits are kept, outcome index ``sum_j bit(readout_qubits[j]) << j``.
    """
    return counts_distribution(counts, student.readout_qubits, student.n_qubits)


def initial_weights(n_weights: int, generators: Sequence[Any], dtype: Any = None, device: Any = None) -> Any:
    """Initial circuit weights ``(M, n_weights)``, the one convention every student layer uses:
    model ``m`` uniform in ``[0, 2 pi)`` from ``generators[m]`` alone (a ``torch.Generator`` or
    ``None`` for torch's global one), drawn in float64 on the CPU and then cast, so a model's start
    does not depend on the other models nor on the dtype beyond rounding.

    Example:
        >>> import torch
        >>> w = initial_weights(3, [torch.Generator().manual_seed(0) for _ in range(2)])
        >>> w.shape, bool((w >= 0).all() and (w < 2 * math.pi).all()), bool((w[0] == w[1]).all())
        (torch.Size([2, 3]), True, True)
    """
    import torch

    init = torch.stack([torch.rand(n_weights, generator=g, dtype=torch.float64) for g in generators]) * (2 * math.pi)
    return init.to(dtype=dtype or torch.float32, device=device)
