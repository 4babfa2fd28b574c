"""The Walsh series of a multiplexed RY, and the truncated multiplexer that keeps only some of its terms.

A multiplexed RY with ``k`` controls applies ``RY(theta_c)`` to its target for control state ``c``.
Its angle table is a Walsh series over the *masks* ``g`` (subsets of the controls)::

    theta_c = sum_g (-1)^popcount(c & g) * phi_g,        phi_g = 2^-k sum_c (-1)^popcount(c & g) * theta_c

The Mottonen RY/CX ladder (the definition of :class:`~qkd_qiskit.circuits.mux.MuxRYGate`) applies
``RY(phi_g)`` while CX gates have folded the parity of the controls in ``g`` into the target (an
``X`` conjugation turns ``RY(phi)`` into ``RY(-phi)``); it walks all ``2^k`` masks in Gray-code
order, one CX per step. Keeping only some masks and walking them in the same order, the target
moves from mask ``a`` to mask ``b`` with ``popcount(a ^ b)`` CX gates (one per control that changes)
and returns to mask 0 at the end: :func:`ladder_cx`. Mask 0 is free.

Example:
    >>> import numpy as np
    >>> theta = np.array([0.3, -1.0, 0.7, 2.0])
    >>> phi = walsh_coefficients(theta)
    >>> np.allclose(phi @ walsh_signs(2), theta)          # the series sums back to the table
    True
    >>> ladder_cx([0, 1, 2, 3], 2), ladder_cx([0, 1], 2), ladder_cx([0, 3], 2)   # full, one bit, two bits
    (4, 2, 4)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from qiskit.circuit import ParameterExpression, QuantumCircuit

from .mux import MuxRYGate


@lru_cache(maxsize=None)
def _signs(k: int) -> np.ndarray:
    c = np.arange(2**k)
    parity = np.array([[bin(a & g).count("1") % 2 for g in c] for a in c])
    out = 1.0 - 2.0 * parity
    out.setflags(write=False)
    return out


def walsh_signs(k: int) -> np.ndarray:
    """``S[c, g] = (-1)^popcount(c & g)``, shape ``(2^k, 2^k)``, symmetric, ``S @ S = 2^k I``."""
    return _signs(k)


def walsh_coefficients(thetas: Any) -> Any:
    """Walsh coefficients ``phi`` ``(..., 2^k)`` of angle tables ``theta`` ``(..., 2^k)`` (numpy or torch)."""
    size = thetas.shape[-1]
    k = size.bit_length() - 1
    signs = _signs(k)
    if not isinstance(thetas, np.ndarray):  # torch: a constant of the same dtype/device, so autograd flows
        signs = thetas.new_tensor(signs)
    return thetas @ signs / size


def gray_rank(g: int) -> int:
    """Position of mask ``g`` in the Gray-code walk (inverse Gray code): ``gray_rank(i ^ (i >> 1)) = i``."""
    i = 0
    while g:
        i ^= g
        g >>= 1
    return i


def walk(masks: Sequence[int]) -> list[int]:
    """The kept masks in the order the ladder visits them (Gray-code order)."""
    return sorted(set(masks), key=gray_rank)


def ladder_cx(masks: Sequence[int], k: int) -> int:
    """CX gates of the ladder over the kept ``masks`` (from mask 0 through every mask back to 0).

    ``k`` (the number of controls) only checks the masks; all ``2^k`` masks cost ``2^k`` CX
    (``k >= 1``), any subset at most that (each Gray step flips one bit)."""
    if any(not 0 <= g < 2**k for g in masks):
        raise ValueError(f"ladder_cx: masks must lie in [0, {2**k}), got {sorted(masks)}")
    cost, cur = 0, 0
    for g in walk(masks) + [0]:
        cost += bin(cur ^ g).count("1")
        cur = g
    return cost


def _linear_form(value: Any) -> tuple[dict, float]:
    """``({parameter: coefficient}, offset)`` of a number or a parameter expression affine in its parameters."""
    if not isinstance(value, ParameterExpression) or not value.parameters:
        return {}, float(value)
    params = value.parameters
    return {p: float(value.gradient(p)) for p in params}, float(value.bind({p: 0.0 for p in params}))


def _expression(coef: dict, offset: float) -> Any:
    """A clean affine expression (or number) from its coefficients, zero terms dropped."""
    out: Any = offset
    for p in sorted(coef, key=lambda q: q.name):
        c = coef[p]
        if c:
            term = p if c == 1.0 else (-p if c == -1.0 else c * p)
            out = term if isinstance(out, float) and out == 0.0 else out + term
    return out


def _walsh_of_params(params: Sequence[Any], masks: Sequence[int]) -> list[Any]:
    """``phi_g = 2^-k sum_c S[c, g] theta_c`` for the ``masks``, computed on the coefficients of the
    (affine) params: Qiskit's expressions do not cancel terms, and summing them symbolically would
    grow a ``4^k``-node expression and carry every parameter, with a zero coefficient, into the
    transpiled circuit."""
    forms = [_linear_form(t) for t in params]
    size = len(params)
    signs = _signs(size.bit_length() - 1)
    out = []
    for g in masks:
        coef: dict = {}
        offset = 0.0
        for c, (cf, off) in enumerate(forms):
            offset += signs[c, g] * off
            for p, v in cf.items():
                coef[p] = coef.get(p, 0.0) + signs[c, g] * v
        out.append(_expression({p: v / size for p, v in coef.items()}, offset / size))
    return out


class TruncatedMuxRYGate(MuxRYGate):
    """A :class:`MuxRYGate` whose angle table has only the Walsh terms ``masks``: the same gate
    (``mux_ry``, the same params ``theta_c`` and matrix, read natively by the engine), but defined by
    the short ladder over the kept masks (:func:`ladder_cx` CX instead of ``2^k``).

    Built from the kept coefficients ``phis`` (numbers or parameters), one per mask; its params are
    then ``theta_c = sum_g S[c, g] phi_g``.

    Example:
        >>> from qiskit.quantum_info import Operator
        >>> g = TruncatedMuxRYGate(2, [0, 3], [0.4, -0.9])
        >>> g.definition.count_ops()["cx"], np.allclose(Operator(g.definition).data, np.asarray(g))
        (4, True)
    """

    def __init__(self, num_controls: int, masks: Sequence[int], phis: Sequence[Any], label: str | None = None):
        if len(masks) != len(phis) or len(set(masks)) != len(masks):
            raise ValueError(f"TruncatedMuxRYGate: need one angle per distinct mask, got masks {list(masks)} "
                             f"and {len(phis)} angles")
        ladder_cx(masks, num_controls)  # checks the masks
        signs = _signs(num_controls)
        thetas = []
        for c in range(2**num_controls):
            terms = [phi if signs[c, g] > 0 else -phi for g, phi in zip(masks, phis)]
            thetas.append(sum(terms[1:], terms[0]) if terms else 0.0)
        self.masks = tuple(int(g) for g in masks)
        super().__init__(num_controls, thetas, label=label)

    def coefficients(self) -> list[Any]:
        """The kept Walsh coefficients ``phi_g`` (in ``masks`` order), computed from the params."""
        return _walsh_of_params(self.params, self.masks)

    def _define(self) -> None:
        k = self.num_controls
        qc = QuantumCircuit(k + 1, name=self.name)
        phi = dict(zip(self.masks, self.coefficients()))
        cur = 0
        for g in walk(self.masks) + [0]:
            for j in range(k):
                if (cur ^ g) >> j & 1:
                    qc.cx(j, k)
            if g in phi:  # the final return to mask 0 applies nothing
                qc.ry(phi.pop(g), k)
            cur = g
        self.definition = qc

    def inverse(self, annotated: bool = False) -> "TruncatedMuxRYGate":
        return TruncatedMuxRYGate(self.num_controls, self.masks, [-phi for phi in self.coefficients()])
