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
from .devices import preset_pass_manager
from .transpile import Transpiled, best_transpile


def profile_trials(profile: Any, device: Any, basis_gates: Any = None) -> list[tuple[dict, Any]]:
    """The transpilation trials a profile asks for: every level of ``optimization_levels`` (default
    ``optimization_level``) x ``transpile_trials`` seeds from ``seed_transpiler`` on."""
    levels = profile.optimization_levels or [profile.optimization_level]
    return [({"optimization_level": level, "seed_transpiler": profile.seed_transpiler + k},
             preset_pass_manager(device, basis_gates, level, profile.seed_transpiler + k))
            for level in levels for k in range(profile.transpile_trials)]


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

    def transpile_trials(self) -> list[tuple[dict, Any]]:
        """``(info, pass_manager)`` candidates of depth-aware transpilation (one by default)."""
        return [({}, self.pass_manager())]

    def target(self) -> Any:
        """The device's ``Target`` (calibrated errors), or None without a device."""
        return None

    def student_key(self, student: Any, *extra: Any) -> tuple:
        """Cache key of a student's circuit on this backend."""
        return (student.name, student.n_qubits, student.layers, id(student.circuit), *extra)

    def transpiled(self, student: Any, measured: bool = True, keep_parameters: bool = False) -> Transpiled:
        """The student's circuit (with final read-out measurements if ``measured``), transpiled once
        (``keep_parameters``: only among trials that keep every parameter, as QNNs need)."""
        key = ("isa", *self.student_key(student, measured, keep_parameters))
        if key not in self._cache:
            self.check_fits(student)
            circuit = student.measured_circuit() if measured else student.circuit
            self._cache[key] = best_transpile(circuit, self.transpile_trials(), self.target(), keep_parameters)
        return self._cache[key]

    def describe(self) -> dict[str, Any]:
        """Profile and device facts for manifests (never credentials)."""
        return {"profile": self.profile.model_dump(mode="json"), "kind": self.kind, "shots": self.shots}

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        """Student outputs (N, n_outputs) for one weight vector on N input-angle rows."""
        raise NotImplementedError
