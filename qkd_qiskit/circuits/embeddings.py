"""Input embeddings: amplitude (a Mottonen RY tree of multiplexers), angle and dense-angle, each as a
parameterized circuit plus the classical map from features to its input angles.

Example:
    >>> import numpy as np
    >>> from qiskit.quantum_info import Statevector
    >>> x = np.arange(1.0, 5.0)[None, :]
    >>> psi = Statevector(amplitude_embedding(2).assign_parameters(amplitude_angles(x, 2)[0]))
    >>> np.allclose(psi.data.real, x[0] / np.linalg.norm(x[0]))
    True
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
from qiskit.circuit import ParameterVector, QuantumCircuit

from .mux import MuxRYGate


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
    """sqrt with a zero (not NaN) gradient at 0: sub-blocks of binary data are often all zero.

    Only a convention: a block norm is not differentiable at 0 (see :func:`amplitude_angles`)."""
    pos = s > 0
    return xp.where(pos, xp.sqrt(xp.where(pos, s, 1.0)), 0.0)


def _safe_atan2(y: Any, x: Any, xp: SimpleNamespace) -> Any:
    """atan2 with atan2(0, 0) = 0 and a zero gradient there (torch's would be NaN).

    Only a convention: the angle is discontinuous at (0, 0) (see :func:`amplitude_angles`)."""
    both_zero = (x == 0) & (y == 0)
    return xp.atan2(xp.where(both_zero, 0.0, y), xp.where(both_zero, 1.0, x))


def amplitude_angles(x: Any, n_qubits: int, max_features: int | None = None) -> Any:
    """Angles of :func:`amplitude_embedding` for a batch of real vectors, shape (B, 2**n - 1).

    Works on numpy (returns float64 numpy) and on torch (returns torch, batched and differentiable;
    gradients stay finite when sub-blocks are zero). A 1-D input is one sample (1-D output).
    Vectors shorter than ``2**n`` are zero-padded. Level ``k < n - 1`` angles are
    ``2 atan2(||upper half||, ||lower half||)`` of each block; the leaf level uses the signed
    amplitudes, ``2 atan2(x[2m+1], x[2m])``, so signs are exact.

    Differentiability (w.r.t. the raw features ``x``). The prepared state ``x / ||x||`` is smooth
    wherever ``x != 0``, but this angle map is not: it is smooth exactly where every aligned pair
    ``(x[2m], x[2m+1])`` holding at least one real (not padded) feature has a non-zero entry.
    There, autograd through the angles and the circuit gives the state's true derivative (tested
    against finite differences of ``x / ||x||``), including on the leaf branch cut
    ``x[2m+1] = 0 > x[2m]``, where the angle jumps from ``2 pi`` to ``-2 pi`` but ``RY`` does not
    change (``RY(2 pi) = RY(-2 pi) = -I``). Where such a pair is ``(0, 0)`` the map is not
    differentiable: the pair's leaf angle ``atan2(0, 0)`` is discontinuous, and an all-zero block's
    norm (in its parent's angle) is not differentiable at 0. The angle parameterisation cannot carry
    the state's derivative along those features (every direction of the state that moves amplitude
    into the zero pair has zero derivative w.r.t. the angles there), so the gradient returned for the
    features of an all-zero pair is 0 - a convention (``_safe_sqrt``, ``_safe_atan2``), not the
    state's derivative ``e_i / ||x||``; the derivatives w.r.t. all other features stay exact. This
    matters only where gradients flow into the features (a trainable ``fc`` reduction, whose outputs
    are never exactly zero in practice); raw data such as the XOR bits is embedded without gradients.

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


# Angle encodings (Hasan & Mahdy: "angle" and "qubit" / dense-angle encoding)

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


def embedding(encoding: str, n_qubits: int) -> QuantumCircuit:
    if encoding == "amplitude":
        return amplitude_embedding(n_qubits)
    if encoding == "angle":
        return angle_embedding(n_qubits)
    if encoding == "dense_angle":
        return dense_angle_embedding(n_qubits)
    raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
