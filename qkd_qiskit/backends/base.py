"""The execution interface every backend kind implements (see :func:`qkd_qiskit.backends.get_backend`).

Example:
    >>> from qkd_qiskit.backends.profiles import load_profile
    >>> Backend(load_profile("aer-fake-torino")).name
    'aer-fake-torino'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .profiles import Profile, ProfileError
from .transpile import Transpiled, transpile_once


class Backend:
    """One execution target for student circuits (see :func:`qkd_qiskit.backends.get_backend`)."""

    kind = "base"

    def __init__(self, profile: Profile):
        self.profile = profile
        self._cache: dict[tuple, Any] = {}

    @property
    def name(self) -> str:
        return self.profile.name or self.profile.kind

    @property
    def shots(self) -> int | None:
        return getattr(self.profile, "shots", None)

    @property
    def num_qubits(self) -> int | None:
        """Width of the device (``None``: unlimited)."""
        return None

    def check_fits(self, student: Any) -> None:
        """Raise :class:`ProfileError` if the student's circuit is wider than the device."""
        width = self.num_qubits
        if width is not None and student.n_qubits > width:
            device = getattr(self.profile, "device", None) or "the noise model"
            plural = "s" * (width != 1)
            raise ProfileError(f"{self.name}: device: {device} has {width} qubit{plural}, the {student.name} "
                               f"student needs {student.n_qubits}")

    def pass_manager(self) -> Any:
        return None

    def student_key(self, student: Any, *extra: Any) -> tuple:
        """Cache key of a student's circuit on this backend."""
        return (student.name, student.n_qubits, student.layers, id(student.circuit), *extra)

    def transpiled(self, student: Any, measured: bool = True) -> Transpiled:
        """The student's circuit (with final read-out measurements if ``measured``), transpiled once."""
        key = ("isa", *self.student_key(student, measured))
        if key not in self._cache:
            self.check_fits(student)
            circuit = student.measured_circuit() if measured else student.circuit
            self._cache[key] = transpile_once(circuit, self.pass_manager())
        return self._cache[key]

    def describe(self) -> dict[str, Any]:
        """Profile and device facts for manifests (never credentials)."""
        return {"profile": self.profile.model_dump(mode="json"), "kind": self.kind, "shots": self.shots}

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        """Student outputs (N, n_outputs) for one weight vector on N input-angle rows."""
        raise NotImplementedError
