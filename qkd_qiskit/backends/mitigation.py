"""Client-side read-out error mitigation with mthree (``mitigation: mthree`` in an aer or ibm profile).

mthree (`qiskit-community/mthree`) corrects measured bit-string counts with per-qubit assignment
matrices in the subspace of the observed bit strings; it works with the read-out bits of students
with mid-circuit measurements too (each read-out bit has its own matrix). It is applied to the
*sampled* read-out distribution of every sample, before the distribution becomes the student's
read-out (``<Z>`` signs or outcome probabilities, :mod:`qkd_qiskit.readout`), so a head sees
mitigated features. The corrected quasi-probabilities are used as they are (they can be slightly
negative; a linear function of them, such as ``<Z>``, is then the unbiased mitigated estimate).

Where the matrices come from:

* ``aer``: the assignment matrices of the device's noise model on the read-out qubits
  (:func:`qkd_qiskit.backends.noise.readout_matrix`), i.e. a perfect calibration: what mthree buys
  there is an upper bound of what it buys on the device.
* ``ibm``: ``M3Mitigation.cals_from_system`` on the device's physical read-out qubits (a few
  calibration circuits; in local testing mode they run on the fake snapshot's simulator).

Read-out errors are a few percent on current devices while gate noise shrinks the read-outs by
25-80 % (``../shared/papers/NOISE.md``); the README's noise section reports what this buys.

Example:
    >>> flip = [np.array([[0.9, 0.2], [0.1, 0.8]]), np.eye(2)]     # P[measured, true] of bits 0 and 1
    >>> true = np.array([[0.5, 0.0, 0.5, 0.0]])                    # outcomes 00 and 10, half each
    >>> measured = true.copy()
    >>> measured[0, :2] = flip[0] @ true[0, :2]
    >>> measured[0, 2:] = flip[0] @ true[0, 2:]
    >>> np.round(mitigate_frequencies(measured, 100_000, flip), 3) + 0.0      # + 0.0: no "-0."
    array([[0.5, 0. , 0.5, 0. ]])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MITIGATIONS = ("none", "mthree")


def _mthree() -> Any:
    try:
        import mthree
    except ImportError:  # pragma: no cover - mthree is a dependency
        raise ValueError("mitigation: mthree is not installed (pip install mthree)") from None
    return mthree


def from_matrices(matrices: Sequence[np.ndarray]) -> Any:
    """An ``M3Mitigation`` calibrated with assignment matrices ``P[measured, true]``, one per read-out bit."""
    mit = _mthree().M3Mitigation()
    mit.cals_from_matrices([np.asarray(m, dtype=np.float32) for m in matrices])
    return mit


def from_system(device: Any, physical: Sequence[int], shots: int, mode: Any = None) -> Any:
    """An ``M3Mitigation`` calibrated on ``device``'s physical qubits ``physical`` (read-out bit j is
    ``physical[j]``; IBM backends and fake snapshots)."""
    mit = _mthree().M3Mitigation(device)
    mit.cals_from_system(qubits=list(physical), shots=shots, runtime_mode=mode, async_cal=False)
    return mit


def _counts(freqs: np.ndarray, shots: int, k: int) -> list[dict[str, int]]:
    """Bit-string counts (Qiskit order: bit j of the outcome index is the j-th character from the
    right) of empirical frequencies ``(N, 2^k)``."""
    counts = np.rint(np.asarray(freqs) * shots).astype(np.int64)
    return [{format(i, f"0{k}b"): int(c) for i, c in enumerate(row) if c > 0} for row in counts]


def mitigate_frequencies(freqs: np.ndarray, shots: int, mitigator: Any, qubits: Sequence[int] | None = None
                         ) -> np.ndarray:
    """Mitigated quasi-probabilities ``(N, 2^k)`` of sampled read-out frequencies ``(N, 2^k)``.

    ``mitigator``: an ``M3Mitigation`` (read-out bit j is its qubit ``qubits[j]``, default j) or the
    per-bit assignment matrices themselves."""
    k = int(np.log2(np.asarray(freqs).shape[1]))
    if not hasattr(mitigator, "apply_correction"):
        mitigator = from_matrices(mitigator)
    qubits = list(range(k)) if qubits is None else list(qubits)
    quasis = mitigator.apply_correction(_counts(freqs, shots, k), qubits)
    out = np.zeros((len(freqs), 2**k), dtype=np.float64)
    for n in range(len(freqs)):
        for bits, value in quasis[n].items():
            out[n, int(bits, 2)] = float(value)
    return out
