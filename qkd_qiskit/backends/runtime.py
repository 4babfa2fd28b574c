"""IBM Runtime execution: ``SamplerV2``/``EstimatorV2`` in Batch, Session or job mode on a real device,
or on a fake snapshot in qiskit-ibm-runtime's local testing mode through the same code.

Credentials come only from Qiskit's saved account or ``QISKIT_IBM_*`` environment variables
(:func:`qkd_qiskit.backends.devices.has_ibm_credentials`); errors are one line with the token redacted.

Example:
    >>> from qkd_qiskit.backends.profiles import load_profile
    >>> be = IBMRuntimeBackend(load_profile("ibm-local-fake-sherbrooke"))
    >>> be.local, be.num_qubits
    (True, 127)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..readout import MEAS_REGISTER
from .base import Backend, profile_trials
from .batch import bindings, bits_to_probs, check_batch, probs_to_readouts
from .devices import TOKEN_ENV, fake_device, has_ibm_credentials, redact
from .mitigation import from_system, mitigate_frequencies
from .profiles import IBMProfile, ProfileError
from .transpile import readout_physical


class IBMRuntimeBackend(Backend):
    """IBM Runtime SamplerV2/EstimatorV2; ``fake_*`` devices run in local testing mode."""

    kind = "ibm"
    profile: IBMProfile

    @property
    def local(self) -> bool:
        return self.profile.local

    def check_credentials(self) -> None:
        """Fail (one line, before anything runs) when a real device has no credentials available."""
        if not self.local and not has_ibm_credentials():
            raise ProfileError(
                f"{self.name}: device {self.profile.device}: no IBM Quantum credentials; save an account "
                f"with QiskitRuntimeService.save_account(...) or set {TOKEN_ENV} (and QISKIT_IBM_CHANNEL, "
                "QISKIT_IBM_INSTANCE); profiles never hold credentials")

    def service(self) -> Any:
        """``QiskitRuntimeService()`` from the saved account / environment (real devices only)."""
        if "service" not in self._cache:
            self.check_credentials()
            from qiskit_ibm_runtime import QiskitRuntimeService

            try:
                self._cache["service"] = QiskitRuntimeService()
            except Exception as err:  # noqa: BLE001 - worded as one line, token redacted
                raise ProfileError(redact(f"{self.name}: cannot reach IBM Quantum: {type(err).__name__}: "
                                          f"{str(err).splitlines()[0] if str(err) else ''}")) from None
        return self._cache["service"]

    @property
    def device(self) -> Any:
        """The backend object: a fake snapshot (local mode) or ``service.backend(device)``."""
        if "device" not in self._cache:
            if self.local:
                self._cache["device"] = fake_device(self.profile.device)
            else:
                self._cache["device"] = self.service().backend(self.profile.device)
        return self._cache["device"]

    @property
    def num_qubits(self) -> int | None:
        return self.device.num_qubits

    def transpile_trials(self) -> list[tuple[dict, Any]]:
        return profile_trials(self.profile, self.device)

    def target(self) -> Any:
        return self.device.target

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {**super().describe(), "device": p.device, "local_testing_mode": self.local, "mode": p.mode,
                "seed": p.seed, "optimization_level": p.optimization_level, "seed_transpiler": p.seed_transpiler,
                "mitigation": p.mitigation}

    def open_mode(self) -> Any:
        """A ``Batch``/``Session`` context (or the backend itself for job mode); use as ``with``."""
        from contextlib import nullcontext

        from qiskit_ibm_runtime import Batch, Session

        if self.profile.mode == "job":
            return nullcontext(self.device)
        cls = Batch if self.profile.mode == "batch" else Session
        return cls(backend=self.device, max_time=self.profile.max_time)

    def primitive_for(self, student: Any) -> str:
        """Estimator for ``<Z>`` students (error mitigation applies), sampler for probabilities."""
        return "estimator" if student.readout == "z" else "sampler"

    def make_primitive(self, primitive: str, mode: Any) -> Any:
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        cls = EstimatorV2 if primitive == "estimator" else SamplerV2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(mode=mode, options=self.profile.primitive_options(primitive))

    def pub(self, student: Any, weights: np.ndarray, angles: np.ndarray) -> tuple:
        """The one PUB of a (student, weights) evaluation on N inputs, on the device ISA."""
        if self.primitive_for(student) == "estimator":
            t = self.transpiled(student, measured=False)
            obs = [[o.apply_layout(t.circuit.layout)] for o in student.observables()]
            return (t.circuit, obs, bindings(t.circuit, student, weights, angles))
        t = self.transpiled(student)
        return (t.circuit, bindings(t.circuit, student, weights, angles))

    def submit(self, student: Any, weights: Any, angles: Any, mode: Any) -> Any:
        """Submit one job (does not wait); returns the Runtime job."""
        w, a = check_batch(student, weights, angles)
        primitive = self.make_primitive(self.primitive_for(student), mode)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return primitive.run([self.pub(student, w, a)])

    def result_readouts(self, student: Any, result: Any) -> np.ndarray:
        """Student outputs (N, n_outputs) from a finished job's ``PrimitiveResult``."""
        data = result[0].data
        if self.primitive_for(student) == "estimator":
            return np.asarray(data.evs, dtype=np.float64).reshape(len(student.readout_qubits), -1).T
        freqs = bits_to_probs(student, data.meas)
        if self.profile.mitigation == "mthree":
            physical = self.readout_physical(student)
            freqs = mitigate_frequencies(freqs, self.profile.shots, self.mitigator(physical), physical)
        return probs_to_readouts(student, freqs)

    def readout_physical(self, student: Any) -> list[int]:
        """Physical qubit of each read-out bit of a sampler student's ISA circuit."""
        return readout_physical(self.transpiled(student).circuit, MEAS_REGISTER, student.readout_qubits)

    def mitigator(self, physical: list[int]) -> Any:
        """mthree calibrated on the device's ``physical`` qubits, once per backend object (its
        calibration circuits are extra device time: 2 circuits x ``shots`` with mthree's defaults)."""
        key = ("mthree", tuple(physical))
        if key not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._cache[key] = from_system(self.device, physical, self.profile.shots)
        return self._cache[key]

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        """Synchronous evaluation (submit and wait). For hardware prefer ``qkd submit``/``collect``."""
        with self.open_mode() as mode:
            job = self.submit(student, weights, angles, mode)
            return self.result_readouts(student, job.result())
