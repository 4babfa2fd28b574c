"""Exact sampler results: :class:`ExactProbArray` (exact outcome probabilities shaped like a pub,
read like a :class:`~qiskit.primitives.BitArray`) and :class:`ExactDataBin` (the data bin of an
exact :class:`~qkd_qiskit.primitives.EngineSampler` result).

A ``BitArray`` holds samples and cannot carry exact probabilities, so the exact sampler returns
these instead. Count keys are Qiskit bitstrings: bit ``j`` of the outcome is the ``j``-th
character from the right.

Example:
    >>> import numpy as np
    >>> reg = ExactProbArray(np.array([[0.25, 0.0, 0.75, 0.0]]), num_bits=2)
    >>> reg.get_counts(0)
    {'00': 0.25, '10': 0.75}
    >>> data = ExactDataBin(reg, shape=(1,), c=reg)
    >>> list(data), data.get_int_counts(0)
    (['c', 'joint'], {0: 0.25, 2: 0.75})
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.primitives import DataBin

__all__ = ["JOINT", "ExactDataBin", "ExactProbArray"]

JOINT = "joint"
"""Field of an :class:`ExactDataBin` that holds the joint distribution of all classical bits."""

Loc = int | tuple[int, ...] | None


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

    def get_probabilities(self, loc: Loc = None) -> np.ndarray:
        if loc is None:
            return self._probs.reshape(-1, self._probs.shape[-1]).sum(0)
        return self._probs[loc]

    def get_int_counts(self, loc: Loc = None) -> dict[int, float]:
        p = self.get_probabilities(loc)
        return {int(k): float(p[k]) for k in np.flatnonzero(p)}

    def get_counts(self, loc: Loc = None) -> dict[str, float]:
        return {_bitstring(k, self.num_bits): v for k, v in self.get_int_counts(loc).items()}

    def __repr__(self) -> str:
        return f"ExactProbArray(<shape={self.shape}, num_bits={self.num_bits}>)"


class ExactDataBin(DataBin):
    """Data bin of an exact sampler result: one :class:`ExactProbArray` per classical register
    (field = register name) plus the field :data:`JOINT`, the joint distribution of all classical
    bits (bit ``c`` of an outcome = ``circuit.clbits[c]``).

    ``get_counts`` / ``get_int_counts`` / ``get_probabilities`` read the joint distribution; that is
    what ``SamplerQNN`` reads first (``pub.data.get_counts(i)``). Everything is passed to
    :class:`~qiskit.primitives.DataBin`'s constructor, so a register may not be named ``joint``.
    """

    def __init__(self, joint: ExactProbArray, /, *, shape: tuple[int, ...] = (), **registers: Any):
        if JOINT in registers:
            raise ValueError(f"ExactDataBin: the field {JOINT!r} holds the joint distribution; "
                             "rename the classical register")
        super().__init__(shape=shape, **registers, **{JOINT: joint})

    def get_counts(self, loc: Loc = None) -> dict[str, float]:
        """Exact joint probabilities ``{bitstring: p}`` (what ``SamplerQNN`` reads first)."""
        return self[JOINT].get_counts(loc)

    def get_int_counts(self, loc: Loc = None) -> dict[int, float]:
        return self[JOINT].get_int_counts(loc)

    def get_probabilities(self, loc: Loc = None) -> np.ndarray:
        return self[JOINT].get_probabilities(loc)
