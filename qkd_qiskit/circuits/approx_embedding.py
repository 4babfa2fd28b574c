"""The approximate (shallower) amplitude embedding: the Mottonen tree with only the Walsh terms that
matter most over the training set, one fixed circuit for every sample.

Every level ``k`` of :func:`~qkd_qiskit.circuits.embeddings.amplitude_embedding` is a multiplexed RY
whose ``2^k`` angles are a Walsh series (:mod:`.walsh`); its exact ladder costs ``2^k`` CX, the whole
tree ``2^n - 2`` (62 on 6 qubits). A *term* is one (level, mask) pair, numbered like the tree's
angles: term ``2^k - 1 + g`` is mask ``g`` of level ``k``. :func:`select_terms` keeps the terms with
the largest mean square coefficient over the training features, within a budget of CX gates;
:func:`approx_amplitude_embedding` builds the tree of those terms only (each level a
:class:`~qkd_qiskit.circuits.walsh.TruncatedMuxRYGate`); its input parameters are the kept
coefficients, :func:`approx_amplitude_angles` computes them for any sample (the exact tree angles,
projected onto the kept terms: the least-squares closest angle table). The circuit does not depend
on the sample, so a device transpiles it once.

Why the mean square: dropping term ``g`` of level ``k`` alone shifts every angle of that level by
``+-phi_g``; the prepared state moves by ``sum_c p(c) phi_g^2 / 4 = phi_g^2 / 4`` in infidelity to
first order, whatever the block weights ``p(c)``. :func:`embedding_fidelity` reports the exact
fidelity ``|<psi_ideal|psi_approx>|^2`` (computed by the product form of the tree, :func:`tree_state`).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).integers(0, 2, (50, 8)).astype(float) + 0.1
    >>> terms = select_terms(x, 3, kept_cx=2)
    >>> terms_cx(terms, 3), len(terms) >= 3           # <= the budget; every mask-0 term is free
    (2, True)
    >>> emb = approx_amplitude_embedding(3, terms)
    >>> emb.decompose().count_ops()["cx"], emb.num_parameters == len(terms)
    (2, True)
    >>> full = tuple(range(7))
    >>> bool(np.allclose(embedding_fidelity(x, 3, full), 1.0))
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from qiskit.circuit import ParameterVector, QuantumCircuit

from .embeddings import amplitude_angles
from .walsh import TruncatedMuxRYGate, ladder_cx, walsh_coefficients, walsh_signs

__all__ = ["approx_amplitude_angles", "approx_amplitude_embedding", "embedding_fidelity", "full_cx",
           "select_terms", "term_level", "terms_cx", "tree_state", "tree_walsh"]


def full_cx(n_qubits: int) -> int:
    """CX gates of the exact tree: ``2^n - 2`` (62 on 6 qubits)."""
    return 2**n_qubits - 2


def term_level(term: int) -> tuple[int, int]:
    """``(level k, mask g)`` of a term number ``2^k - 1 + g``."""
    k = (term + 1).bit_length() - 1
    return k, term - (2**k - 1)


def _by_level(terms: Sequence[int], n_qubits: int) -> list[list[int]]:
    levels: list[list[int]] = [[] for _ in range(n_qubits)]
    for t in sorted(set(terms)):
        k, g = term_level(t)
        if k >= n_qubits:
            raise ValueError(f"term {t} does not exist on {n_qubits} qubits (terms are 0..{2**n_qubits - 2})")
        levels[k].append(g)
    return levels


def terms_cx(terms: Sequence[int], n_qubits: int) -> int:
    """CX gates of the tree that keeps ``terms`` (sum of :func:`~.walsh.ladder_cx` over the levels)."""
    return sum(ladder_cx(masks, k) for k, masks in enumerate(_by_level(terms, n_qubits)))


def tree_walsh(angles: Any, n_qubits: int) -> Any:
    """Walsh coefficients of the tree angles ``(..., 2^n - 1)`` (level by level), numpy or torch;
    column ``t`` is term ``t``."""
    parts = [walsh_coefficients(angles[..., 2**k - 1:2**(k + 1) - 1]) for k in range(n_qubits)]
    if isinstance(angles, np.ndarray):
        return np.concatenate(parts, -1)
    import torch

    return torch.cat(parts, -1)


def select_terms(x_train: Any, n_qubits: int, kept_cx: int, max_features: int | None = None) -> tuple[int, ...]:
    """Terms to keep for features ``x_train`` ``(N, F)``: at most ``kept_cx`` CX gates in all.

    Every mask-0 term is kept (it costs no CX). The others are taken greedily by their mean square
    coefficient over ``x_train`` (largest first, ties by term number), each when the tree's CX count
    with it stays within ``kept_cx`` (:func:`terms_cx`); passes repeat until none fits, so a term
    that became free is taken too. ``kept_cx >= 2^n - 2`` keeps every term (the exact embedding).
    The choice depends on ``x_train`` only: fit it on the training split.
    """
    if isinstance(kept_cx, bool) or not isinstance(kept_cx, (int, np.integer)) or kept_cx < 0:
        raise ValueError(f"select_terms: kept_cx must be an integer >= 0, got {kept_cx!r}")
    n_terms = 2**n_qubits - 1
    if kept_cx >= full_cx(n_qubits):
        return tuple(range(n_terms))
    phi = tree_walsh(amplitude_angles(np.asarray(x_train, dtype=np.float64), n_qubits, max_features), n_qubits)
    score = (phi**2).mean(0)
    kept = {2**k - 1 for k in range(n_qubits)}
    order = sorted(set(range(n_terms)) - kept, key=lambda t: (-score[t], t))
    changed = True
    while changed:
        changed = False
        for t in order:
            if t not in kept and terms_cx(kept | {t}, n_qubits) <= kept_cx:
                kept.add(t)
                changed = True
    return tuple(sorted(kept))


def approx_amplitude_embedding(n_qubits: int, terms: Sequence[int], prefix: str = "x") -> QuantumCircuit:
    """The amplitude-embedding tree with only ``terms``: level ``k`` is a
    :class:`~qkd_qiskit.circuits.walsh.TruncatedMuxRYGate` on target ``n - 1 - k`` with controls
    ``n - k .. n - 1`` (as in :func:`~qkd_qiskit.circuits.embeddings.amplitude_embedding`), holding
    that level's kept masks. Input parameters: one per kept term, in term order (the columns of
    :func:`approx_amplitude_angles`). All terms give a circuit equivalent to the exact embedding
    (same gates, angles and CX ladder)."""
    if n_qubits < 1:
        raise ValueError(f"approx_amplitude_embedding: n_qubits must be >= 1, got {n_qubits}")
    levels = _by_level(terms, n_qubits)
    phis = ParameterVector(prefix, sum(map(len, levels)))
    qc = QuantumCircuit(n_qubits, name="approx_amplitude_embedding")
    offset = 0
    for k, masks in enumerate(levels):
        if not masks:
            continue
        target, controls = n_qubits - 1 - k, list(range(n_qubits - k, n_qubits))
        level = phis[offset:offset + len(masks)]
        offset += len(masks)
        if k == 0:
            qc.ry(level[0], target)
        else:
            qc.append(TruncatedMuxRYGate(k, masks, level), controls + [target])
    return qc


def approx_amplitude_angles(x: Any, n_qubits: int, terms: Sequence[int], max_features: int | None = None) -> Any:
    """Input values ``(B, len(terms))`` of :func:`approx_amplitude_embedding` for features ``x``
    ``(B, F)`` (numpy or torch, differentiable like :func:`~.embeddings.amplitude_angles`): the kept
    Walsh coefficients of the exact tree angles."""
    phi = tree_walsh(amplitude_angles(x, n_qubits, max_features), n_qubits)
    return phi[..., list(sorted(set(terms)))]


def tree_state(angles: np.ndarray, n_qubits: int) -> np.ndarray:
    """Real states ``(B, 2^n)`` prepared by the tree from ``|0>`` with angle tables ``(B, 2^n - 1)``.

    Product form: amplitude ``i`` is the product over levels ``k`` of ``cos`` (bit ``n - 1 - k`` of ``i``
    is 0) or ``sin`` of half the angle of control state ``i >> (n - k)``. Hand-written (numpy) so the
    fidelity report needs neither the engine nor one Qiskit simulation per sample."""
    a = np.asarray(angles, dtype=np.float64)
    i = np.arange(2**n_qubits)
    amp = np.ones((a.shape[0], 2**n_qubits))
    for k in range(n_qubits):
        theta = a[:, 2**k - 1 + (i >> (n_qubits - k))] / 2
        amp *= np.where((i >> (n_qubits - 1 - k)) & 1, np.sin(theta), np.cos(theta))
    return amp


def embedding_fidelity(x: Any, n_qubits: int, terms: Sequence[int], max_features: int | None = None) -> np.ndarray:
    """Fidelity ``|<psi_ideal|psi_approx>|^2`` per sample ``(B,)`` of the embedding that keeps ``terms``:
    ideal = ``x / ||x||`` (zero-padded), approx = the state its circuit prepares from ``|0>``."""
    x = np.asarray(x, dtype=np.float64)
    angles = amplitude_angles(x, n_qubits, max_features)
    keep = np.zeros(2**n_qubits - 1, dtype=bool)
    keep[list(terms)] = True
    phi = tree_walsh(angles, n_qubits) * keep
    approx = np.concatenate([phi[:, 2**k - 1:2**(k + 1) - 1] @ walsh_signs(k) for k in range(n_qubits)], 1)
    ideal = np.pad(x, ((0, 0), (0, 2**n_qubits - x.shape[1])))
    ideal /= np.linalg.norm(ideal, axis=1, keepdims=True)
    return np.einsum("bi,bi->b", ideal, tree_state(approx, n_qubits)) ** 2

