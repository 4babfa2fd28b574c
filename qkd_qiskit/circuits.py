"""Circuit library of the quantum students: amplitude embedding, ansatzes, student circuits.

Everything here is a plain function returning Qiskit objects, in the style of Qiskit 2.x's circuit
library, so the same circuit runs on ``Statevector``, Aer, IBM fake devices and Runtime.

Conventions (little-endian throughout, as in Qiskit):

* Basis index ``i = sum_q bit_q * 2**q``; the embedding prepares ``amplitude[i] = x[i] / ||x||``.
* The embedding's input parameters ``x[0..2**n - 2]`` are angles computed classically by
  :func:`amplitude_angles`, level by level of a Mottonen RY tree (level-major, control-state minor).
* Trainable weights are one ``ParameterVector`` named ``"w"``.
* ``q_nd`` students measure qubit 0 first, then qubit 1, ...; the kept (read-out) qubits are
  ``n - n_d .. n - 1``. Mid-circuit and final measurements of qubit ``q`` go to ``meas[q]``.

Example:
    >>> import numpy as np
    >>> from qiskit.quantum_info import Statevector
    >>> st = build_student("q2")
    >>> len(st.input_params), len(st.weight_params), st.head_params(3)
    (63, 59, 15)
    >>> x = np.arange(1.0, 5.0)[None, :]            # padded to 4 amplitudes on 2 qubits
    >>> emb = amplitude_embedding(2)
    >>> psi = Statevector(emb.assign_parameters(amplitude_angles(x, 2)[0]))
    >>> np.allclose(psi.data.real, x[0] / np.linalg.norm(x[0]))
    True
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np
from qiskit.circuit import (
    ClassicalRegister,
    Gate,
    Parameter,
    ParameterVector,
    QuantumCircuit,
)
from qiskit.circuit.library import efficient_su2, n_local
from qiskit.quantum_info import SparsePauliOp

from .catalog import ARCHITECTURES
from .readout import MEAS_REGISTER, counts_distribution, measured_never_reused

# --------------------------------------------------------------------------------------------------
# Multiplexed RY gate
# --------------------------------------------------------------------------------------------------


def _gray(i: int) -> int:
    return i ^ (i >> 1)


def _gray_switch(i: int, k: int) -> int:
    """Index of the control bit that flips between Gray codes ``g_i`` and ``g_{i+1 mod 2^k}``."""
    return (_gray(i) ^ _gray((i + 1) % (1 << k))).bit_length() - 1


def _walsh_gray_angles(thetas: Sequence[Any]) -> list[Any]:
    """Angles ``phi`` of the RY/CX ladder: ``theta_c = sum_i (-1)^{popcount(c & g_i)} phi_i``.

    The sign matrix is a (row-permuted) Walsh-Hadamard matrix ``M`` with ``M^T M = 2^k I``, so
    ``phi = M^T theta / 2^k``; works on floats and on ``Parameter`` objects alike.
    """
    size = len(thetas)
    phis = []
    for i in range(size):
        g = _gray(i)
        terms = [t if bin(c & g).count("1") % 2 == 0 else -t for c, t in enumerate(thetas)]
        phis.append(sum(terms[1:], terms[0]) / size)
    return phis


class MuxRYGate(Gate):
    """Multiplexed (uniformly controlled) RY: ``k`` controls, then the target (last qubit).

    For the control basis state ``c = sum_j bit(qubit j) << j`` it applies ``RY(params[c])`` to the
    target, so ``params`` holds ``2**k`` angles. Its definition is the Mottonen RY/CX ladder
    (``2**k`` RY and ``2**k`` CX for ``k >= 1``; the RY angles are linear expressions of the params),
    which is what ``Statevector``, ``transpile``, Aer, QPY and Runtime see.

    Example:
        >>> from qiskit.quantum_info import Operator
        >>> Operator(MuxRYGate(1, [0.3, -1.2])).dim
        (4, 4)
    """

    def __init__(self, num_controls: int, params: Sequence[Any], label: str | None = None) -> None:
        if num_controls < 0:
            raise ValueError(f"MuxRYGate: num_controls must be >= 0, got {num_controls}")
        if len(params) != 2**num_controls:
            raise ValueError(
                f"MuxRYGate: {num_controls} controls need {2**num_controls} angles, got {len(params)}"
            )
        super().__init__("mux_ry", num_controls + 1, list(params), label=label)

    @property
    def num_controls(self) -> int:
        return self.num_qubits - 1

    def _define(self) -> None:
        k = self.num_controls
        qc = QuantumCircuit(k + 1, name=self.name)
        if k == 0:
            qc.ry(self.params[0], 0)
        else:
            for i, phi in enumerate(_walsh_gray_angles(self.params)):
                qc.ry(phi, k)
                qc.cx(_gray_switch(i, k), k)
        self.definition = qc

    def inverse(self, annotated: bool = False) -> "MuxRYGate":
        return MuxRYGate(self.num_controls, [-p for p in self.params])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Block-diagonal matrix (for bound params): index = control state + 2**k * target bit."""
        if copy is False:
            raise ValueError("unable to avoid copy while creating an array as requested")
        size = 2**self.num_controls
        half = np.array([float(p) for p in self.params]) / 2
        mat = np.zeros((2 * size, 2 * size))
        idx = np.arange(size)
        mat[idx, idx] = mat[idx + size, idx + size] = np.cos(half)
        mat[idx + size, idx] = np.sin(half)
        mat[idx, idx + size] = -np.sin(half)
        return mat.astype(dtype) if dtype is not None else mat


# --------------------------------------------------------------------------------------------------
# Amplitude embedding
# --------------------------------------------------------------------------------------------------


def amplitude_embedding(n_qubits: int, prefix: str = "x") -> QuantumCircuit:
    """Parameterized amplitude embedding on ``n_qubits``: a Mottonen tree of multiplexed RY.

    Level ``k = 0`` is a plain ``RYGate`` on the most significant qubit ``n - 1``; level
    ``k >= 1`` is one ``MuxRYGate`` on target ``n - 1 - k`` with controls ``n - k, ..., n - 1``
    (in that order, so the control state is the top ``k`` bits of the basis index). Its
    ``2**n - 1`` input parameters (``circuit.parameters`` order = :func:`amplitude_angles` columns)
    are bound to the angles of a real vector; real signed vectors are prepared exactly.

    Example:
        >>> emb = amplitude_embedding(3)
        >>> emb.num_parameters, [inst.operation.name for inst in emb.data]
        (7, ['ry', 'mux_ry', 'mux_ry'])
    """
    if n_qubits < 1:
        raise ValueError(f"amplitude_embedding: n_qubits must be >= 1, got {n_qubits}")
    angles = ParameterVector(prefix, 2**n_qubits - 1)
    qc = QuantumCircuit(n_qubits, name="amplitude_embedding")
    offset = 0
    for k in range(n_qubits):
        target, controls = n_qubits - 1 - k, list(range(n_qubits - k, n_qubits))
        level = angles[offset : offset + 2**k]
        offset += 2**k
        if k == 0:
            qc.ry(level[0], target)
        else:
            qc.append(MuxRYGate(k, level), controls + [target])
    return qc


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _namespace(use_torch: bool) -> SimpleNamespace:
    if use_torch:
        import torch

        return SimpleNamespace(sqrt=torch.sqrt, atan2=torch.atan2, where=torch.where, cat=torch.cat)
    return SimpleNamespace(sqrt=np.sqrt, atan2=np.arctan2, where=np.where, cat=np.concatenate)


def _check_batch(x: Any, n_qubits: int, max_features: int, use_torch: bool) -> Any:
    """Validate a (B, F) batch and return it zero-padded to (B, 2**n) as a float array/tensor."""
    if use_torch:
        import torch

        if x.is_complex():
            raise ValueError("amplitude_angles: complex input; only real vectors are supported")
        a = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        finite = torch.isfinite(a).all(dim=1).cpu().numpy()
        zero = (a == 0).all(dim=1).cpu().numpy()
    else:
        if np.iscomplexobj(x):
            raise ValueError("amplitude_angles: complex input; only real vectors are supported")
        a = np.asarray(x, dtype=np.float64)
        finite, zero = np.isfinite(a).all(axis=1), (a == 0).all(axis=1)
    if a.shape[1] > max_features:
        raise ValueError(
            f"sample 0: vector has {a.shape[1]} entries, more than {max_features} "
            f"(the capacity of {n_qubits} qubits is {2**n_qubits}); every sample of the batch is too long"
        )
    if not finite.all():
        raise ValueError(f"sample {int(np.argmin(finite))}: vector has non-finite entries (NaN or inf)")
    if zero.any():
        raise ValueError(f"sample {int(np.argmax(zero))}: vector is all zeros")
    pad = 2**n_qubits - a.shape[1]
    if use_torch:
        import torch

        a = torch.nn.functional.pad(a, (0, pad))
        # Angles are scale invariant; dividing by the (detached) max keeps squares in range.
        return a / a.abs().amax(dim=1, keepdim=True).detach()
    a = np.pad(a, ((0, 0), (0, pad)))
    return a / np.abs(a).max(axis=1, keepdims=True)


def _safe_sqrt(s: Any, xp: SimpleNamespace) -> Any:
    """sqrt with a zero (not NaN) gradient at 0: sub-blocks of binary data are often all zero."""
    pos = s > 0
    return xp.where(pos, xp.sqrt(xp.where(pos, s, 1.0)), 0.0)


def _safe_atan2(y: Any, x: Any, xp: SimpleNamespace) -> Any:
    """atan2 with atan2(0, 0) = 0 and a zero gradient there (torch's would be NaN)."""
    both_zero = (x == 0) & (y == 0)
    return xp.atan2(xp.where(both_zero, 0.0, y), xp.where(both_zero, 1.0, x))


def amplitude_angles(x: Any, n_qubits: int, max_features: int | None = None) -> Any:
    """Angles of :func:`amplitude_embedding` for a batch of real vectors, shape (B, 2**n - 1).

    Works on numpy (returns float64 numpy) and on torch (returns torch, batched and differentiable;
    gradients stay finite when sub-blocks are zero). A 1-D input is one sample (1-D output).
    Vectors shorter than ``2**n`` are zero-padded. Level ``k < n - 1`` angles are
    ``2 atan2(||upper half||, ||lower half||)`` of each block; the leaf level uses the signed
    amplitudes, ``2 atan2(x[2m+1], x[2m])``, so signs are exact.

    Raises:
        ValueError: naming the sample index, for an all-zero vector, NaN/inf, or a vector longer
            than ``max_features`` (default ``2**n``).

    Example:
        >>> amplitude_angles(np.array([[0.0, 1.0]]), 1) / np.pi
        array([[1.]])
    """
    use_torch = _is_torch(x)
    one_sample = x.ndim == 1 if hasattr(x, "ndim") else np.ndim(x) == 1
    if one_sample:
        x = x[None, :] if use_torch else np.asarray(x)[None, :]
    if (x.ndim if hasattr(x, "ndim") else np.ndim(x)) != 2:
        raise ValueError("amplitude_angles: expected a (batch, features) array")
    cap = 2**n_qubits if max_features is None else min(max_features, 2**n_qubits)
    a = _check_batch(x, n_qubits, cap, use_torch)
    xp = _namespace(use_torch)
    batch, levels = a.shape[0], []
    for k in range(n_qubits):
        blocks = a.reshape(batch, 2**k, 2, 2 ** (n_qubits - 1 - k))  # [sample, prefix, bit, rest]
        if k < n_qubits - 1:
            sq = (blocks * blocks).sum(-1)
            lo, hi = _safe_sqrt(sq[:, :, 0], xp), _safe_sqrt(sq[:, :, 1], xp)
        else:
            lo, hi = blocks[:, :, 0, 0], blocks[:, :, 1, 0]
        levels.append(2 * _safe_atan2(hi, lo, xp))
    angles = xp.cat(levels, 1)
    return angles[0] if one_sample else angles


# --------------------------------------------------------------------------------------------------
# Angle encodings (Hasan & Mahdy: "angle" and "qubit" / dense-angle encoding)
# --------------------------------------------------------------------------------------------------

ENCODINGS = ("amplitude", "angle", "dense_angle")


def angle_embedding(n_qubits: int, prefix: str = "x") -> QuantumCircuit:
    """One ``RY(x_q)`` on every qubit q from ``|0>``: ``n`` features, one per qubit.

    Its input parameters are the angles; :func:`angle_angles` maps features in [0, 1] to ``pi * x``.

    Example:
        >>> angle_embedding(3).num_parameters
        3
    """
    if n_qubits < 1:
        raise ValueError(f"angle_embedding: n_qubits must be >= 1, got {n_qubits}")
    x = ParameterVector(prefix, n_qubits)
    qc = QuantumCircuit(n_qubits, name="angle_embedding")
    for q in range(n_qubits):
        qc.ry(x[q], q)
    return qc


def dense_angle_embedding(n_qubits: int, prefix: str = "x") -> QuantumCircuit:
    """Two features per qubit ("qubit" / dense-angle encoding): ``RY(x_{2q})`` then ``RZ(x_{2q+1})``.

    Example:
        >>> dense_angle_embedding(2).num_parameters
        4
    """
    if n_qubits < 1:
        raise ValueError(f"dense_angle_embedding: n_qubits must be >= 1, got {n_qubits}")
    x = ParameterVector(prefix, 2 * n_qubits)
    qc = QuantumCircuit(n_qubits, name="dense_angle_embedding")
    for q in range(n_qubits):
        qc.ry(x[2 * q], q)
        qc.rz(x[2 * q + 1], q)
    return qc


def encoding_capacity(encoding: str, n_qubits: int) -> int:
    """Features an encoding takes on ``n_qubits``: ``2^n`` (amplitude), ``n`` (angle), ``2n`` (dense)."""
    caps = {"amplitude": 2**n_qubits, "angle": n_qubits, "dense_angle": 2 * n_qubits}
    if encoding not in caps:
        raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    return caps[encoding]


def angle_angles(x: Any, n_angles: int, max_features: int | None = None) -> Any:
    """Angles ``pi * x`` (features in [0, 1] -> [0, pi]), zero-padded to ``n_angles``; numpy or torch."""
    use_torch = _is_torch(x)
    one_sample = x.ndim == 1 if hasattr(x, "ndim") else np.ndim(x) == 1
    if not use_torch:
        x = np.asarray(x, dtype=np.float64)
    if one_sample:
        x = x[None, :]
    cap = n_angles if max_features is None else min(max_features, n_angles)
    if x.shape[1] > cap:
        raise ValueError(f"angle encoding: {x.shape[1]} features, more than {cap}")
    pad = n_angles - x.shape[1]
    if use_torch:
        import torch

        a = torch.nn.functional.pad(x, (0, pad)) * math.pi
    else:
        a = np.pad(x, ((0, 0), (0, pad))) * np.pi
    return a[0] if one_sample else a


def _embedding(encoding: str, n_qubits: int) -> QuantumCircuit:
    if encoding == "amplitude":
        return amplitude_embedding(n_qubits)
    if encoding == "angle":
        return angle_embedding(n_qubits)
    if encoding == "dense_angle":
        return dense_angle_embedding(n_qubits)
    raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


# --------------------------------------------------------------------------------------------------
# Ansatzes
# --------------------------------------------------------------------------------------------------


def rot_layers(n_qubits: int = 4, layers: int = 3) -> QuantumCircuit:
    """Per layer RX, RY, RZ on every qubit, then a CX ring (0->1, ..., n-1 -> 0): ``3 n L`` weights.

    Layer weights in order: qubit 0's RX, RY, RZ, then qubit 1's, ... (the Hasan & Mahdy student).

    Example:
        >>> rot_layers(4, 2).num_parameters
        24
    """
    w = ParameterVector("w", 3 * n_qubits * layers)
    qc = QuantumCircuit(n_qubits, name="rot_layers")
    k = 0
    for _ in range(layers):
        for q in range(n_qubits):
            qc.rx(w[k], q)
            qc.ry(w[k + 1], q)
            qc.rz(w[k + 2], q)
            k += 3
        for a, b in _ring(n_qubits):
            qc.cx(a, b)
    return qc


def _ring(m: int) -> list[tuple[int, int]]:
    """Neighbouring pairs of a ring on m qubits: (0,1), ..., (m-2,m-1), (m-1,0); one pair for m=2."""
    if m < 2:
        return []
    return [(i, i + 1) for i in range(m - 1)] + ([(m - 1, 0)] if m > 2 else [])


def universal_layer_size(m: int) -> int:
    """Weights of one universal layer on m active qubits: RX + RY per qubit, RZZ per ring pair."""
    return 2 * m + len(_ring(m))


def _universal_layer(m: int, weights: Sequence[Parameter]) -> QuantumCircuit:
    """One universal layer on m qubits (weights: RX q0..q(m-1), RY q0..q(m-1), RZZ ring pairs)."""
    entanglement = _ring(m)
    block = n_local(
        m, ["rx", "ry"], "rzz" if entanglement else [], entanglement=entanglement, reps=1,
        skip_final_rotation_layer=True, parameter_prefix="t",
    )
    return block.assign_parameters(dict(zip(block.parameters, weights)))


def hea(n_qubits: int = 6, layers: int = 5) -> QuantumCircuit:
    """Hardware-efficient ansatz: ``efficient_su2`` with RY, RZ and a linear CX chain.

    Per layer RY then RZ on every qubit, then CX(0,1), CX(1,2), ...; ``efficient_su2`` adds a final
    RY/RZ rotation layer, so there are ``2 n (layers + 1)`` weights (72 for n=6, L=5).

    Example:
        >>> hea(6, 5).num_parameters
        72
    """
    return efficient_su2(
        n_qubits, su2_gates=["ry", "rz"], entanglement="linear", reps=layers,
        parameter_prefix="w", name="hea",
    )


def universal(n_qubits: int = 6, layers: int = 5) -> QuantumCircuit:
    """Universal ansatz (Larocca et al.): per layer RX and RY on every qubit, RZZ on a ring.

    Layer weights in order: RX on qubits 0..n-1, RY on qubits 0..n-1, RZZ on (0,1), ..., (n-1,0).

    Example:
        >>> universal(6, 5).num_parameters
        90
    """
    size = universal_layer_size(n_qubits)
    w = ParameterVector("w", layers * size)
    qc = QuantumCircuit(n_qubits, name="universal")
    for j in range(layers):
        qc.compose(_universal_layer(n_qubits, w[j * size : (j + 1) * size]), inplace=True)
    return qc


def q_nd_active_qubits(n_qubits: int, n_d: int, layers: int) -> list[list[int]]:
    """Active qubits of each q_nd layer: layer j drops qubits 0..min(j, n - n_d) - 1."""
    return [list(range(min(j, n_qubits - n_d), n_qubits)) for j in range(layers)]


def q_nd(n_qubits: int = 6, n_d: int = 2, layers: int = 5) -> QuantumCircuit:
    """Universal layers that shrink: after each of the first ``n - n_d`` layers, measure one qubit.

    Qubit 0 is measured (into ``meas[0]``) after layer 0, qubit 1 after layer 1, ...; a measured
    qubit is never acted on again, and the last ``n_d`` qubits are read out. Layer j is a universal
    layer on its active qubits (a single RZZ when 2 are active). n=6, L=5, n_d=2 gives
    18 + 15 + 12 + 9 + 5 = 59 weights.

    Example:
        >>> q_nd(6, 2, 5).num_parameters
        59
    """
    if not 2 <= n_d < n_qubits:
        raise ValueError(f"q_nd: n_d must be in 2..{n_qubits - 1} for {n_qubits} qubits, got {n_d}")
    if layers < n_qubits - n_d:
        raise ValueError(f"q_nd: measuring {n_qubits - n_d} qubits needs >= {n_qubits - n_d} layers")
    active = q_nd_active_qubits(n_qubits, n_d, layers)
    w = ParameterVector("w", sum(universal_layer_size(len(a)) for a in active))
    qc = QuantumCircuit(n_qubits, name=f"q{n_d}")
    meas = ClassicalRegister(n_qubits, MEAS_REGISTER)
    qc.add_register(meas)
    offset = 0
    for j, qubits in enumerate(active):
        size = universal_layer_size(len(qubits))
        qc.compose(_universal_layer(len(qubits), w[offset : offset + size]), qubits, inplace=True)
        offset += size
        if j < n_qubits - n_d:
            qc.measure(j, meas[j])
    return qc


# --------------------------------------------------------------------------------------------------
# Student circuits
# --------------------------------------------------------------------------------------------------


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

    def input_angles(self, x: Any) -> Any:
        """Bind values for ``input_params`` of a numpy/torch (B, F) batch, F <= n_features."""
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
    encoding: str = "amplitude",
) -> StudentCircuit:
    """Build a student circuit by architecture name (see :data:`ARCHITECTURES`, plus ``rot_layers``).

    ``n_features`` (default: the encoding's capacity, ``2**n_qubits`` for amplitude) is the longest
    input accepted; shorter ones are padded. ``encoding``: one of :data:`ENCODINGS`.

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
    embedding = _embedding(encoding, n_qubits)
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
    )


# --------------------------------------------------------------------------------------------------
# Helpers for simulators and samplers
# --------------------------------------------------------------------------------------------------


def without_measurements(circuit: QuantumCircuit) -> QuantumCircuit:
    """Unitary part of a circuit (all measurements dropped, classical bits kept).

    For q_nd this is enough for exact simulation: a measured qubit is never acted on again, so the
    read-out distribution is the marginal of this circuit's state on the read-out qubits.
    """
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
