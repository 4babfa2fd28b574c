"""Aer with a device noise model: circuits transpiled once to the device ISA, then evaluated by the
density-matrix fast path (:mod:`.fastpath`, default) or Aer's plain SamplerV2 on the full width.

Example:
    >>> from qkd_qiskit.backends.profiles import load_profile
    >>> be = AerBackend(load_profile("aer-fake-sherbrooke"))
    >>> be.num_qubits, be.relaxes_delays
    (127, True)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from ..readout import MEAS_REGISTER
from .base import Backend, profile_trials
from .batch import bindings, bits_to_probs, check_batch, probs_to_readouts
from .devices import device_noise_model, device_relaxes_delays, fake_device
from .fastpath import Compacted, sample_probs
from .mitigation import mitigate_frequencies
from .noise import load_noise_model, noise_errors, readout_matrix
from .profiles import AerProfile
from .transpile import readout_physical


@lru_cache(maxsize=None)
def _noise_records(path: str | None, device: str | None) -> list[dict]:
    """``to_dict`` records of the shared noise model of a file or a device, once per process."""
    return noise_errors(load_noise_model(path) if path else device_noise_model(device))


class AerBackend(Backend):
    """Aer with a device noise model; circuits transpiled once to the device ISA."""

    kind = "aer"
    profile: AerProfile

    @property
    def device(self) -> Any:
        return fake_device(self.profile.device) if self.profile.device else None

    @property
    def noise_model(self) -> Any:
        if self.profile.noise_model:
            return load_noise_model(self.profile.noise_model)
        return device_noise_model(self.profile.device)

    @property
    def relaxes_delays(self) -> bool:
        """True if the noise model adds idle relaxation on ``delay`` (a device model, not a JSON file)."""
        return not self.profile.noise_model and device_relaxes_delays(self.profile.device)

    @property
    def num_qubits(self) -> int | None:
        if self.device is not None:
            return self.device.num_qubits
        qubits = self.noise_model.noise_qubits
        return max(qubits) + 1 if qubits else None

    def transpile_trials(self) -> list[tuple[dict, Any]]:
        basis = None if self.device is not None else self.noise_model.basis_gates
        return profile_trials(self.profile, self.device, basis)

    def target(self) -> Any:
        return None if self.device is None else self.device.target

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {**super().describe(), "device": p.device, "noise_model": p.noise_model, "seed": p.seed,
                "method": p.method, "fast_eval": p.fast_eval, "optimization_level": p.optimization_level,
                "seed_transpiler": p.seed_transpiler, "num_qubits": self.num_qubits, "mitigation": p.mitigation}

    def compacted(self, student: Any, measured: bool = True, keep_parameters: bool = False) -> Compacted:
        """The ISA circuit on its active qubits only, with the noise model restricted to them."""
        key = ("compact", *self.student_key(student, measured, keep_parameters))
        if key not in self._cache:
            records = _noise_records(self.profile.noise_model, self.profile.device)
            noise_key = f"device={self.profile.device}|file={self.profile.noise_model}"
            self._cache[key] = Compacted.build(self.transpiled(student, measured, keep_parameters), self.noise_model,
                                               self.relaxes_delays, records, noise_key)
        return self._cache[key]

    def backend_options(self, method: str | None = None, noise_model: Any = None) -> dict[str, Any]:
        return {"method": method or self.profile.method, "noise_model": noise_model,
                "max_parallel_experiments": 0, "max_parallel_threads": 0}

    def sampler(self, noise_model: Any = None, seed: int | None = None) -> Any:
        """Aer SamplerV2 with this profile's shots and noise (default: the full-width model) and
        ``seed`` (default: the profile's)."""
        from qiskit_aer.primitives import SamplerV2

        nm = self.noise_model if noise_model is None else noise_model
        return SamplerV2(default_shots=self.profile.shots, seed=self.profile.seed if seed is None else seed,
                         options={"backend_options": self.backend_options(noise_model=nm)})

    def estimator(self, noise_model: Any) -> Any:
        """Aer EstimatorV2 (precision 1/sqrt(shots)); give it compact circuits and their noise model."""
        from qiskit_aer.primitives import EstimatorV2

        return EstimatorV2(options={"default_precision": 1 / math.sqrt(self.profile.shots),
                                    "backend_options": self.backend_options(noise_model=noise_model),
                                    "run_options": {"seed_simulator": self.profile.seed}})

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        w, a = check_batch(student, weights, angles)
        seed = self.profile.seed if seed is None else seed
        if self.profile.fast_eval:
            cmp = self.compacted(student)
            if cmp.fast_path_ok:
                return self.sampled_from(student, cmp.probabilities(student, w, a), seed)
        freqs = self.sampler_probs(student, w, a, seed)
        physical = readout_physical(self.transpiled(student).circuit, MEAS_REGISTER, student.readout_qubits)
        return probs_to_readouts(student, self._mitigated(freqs, [readout_matrix(self.noise_model, q)
                                                                   for q in physical]))

    def sampled_from(self, student: Any, probs: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Read-outs ``(N, n_outputs)`` of exact noisy read-out probabilities ``(N, 2^k)`` of the
        compact circuit (read-out errors included; from :meth:`Compacted.probabilities` or any
        simulator of the same distribution): the profile's shots drawn with a seeded multinomial, then
        its read-out mitigation."""
        seed = self.profile.seed if seed is None else seed
        cmp = self.compacted(student)
        freqs = sample_probs(probs, self.profile.shots, seed)
        matrices = [readout_matrix(cmp.noise_model, q) for q in cmp.readout_positions(student)]
        return probs_to_readouts(student, self._mitigated(freqs, matrices))

    def _mitigated(self, freqs: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
        """Sampled read-out frequencies, mthree-corrected with the noise model's assignment matrices
        when the profile asks for it (:mod:`.mitigation`)."""
        if self.profile.mitigation != "mthree":
            return freqs
        return mitigate_frequencies(freqs, self.profile.shots, matrices)

    def sampler_probs(self, student: Any, weights: np.ndarray, angles: np.ndarray, seed: int) -> np.ndarray:
        """The plain path: Aer SamplerV2 on the full-width ISA circuit with the full noise model."""
        isa = self.transpiled(student).circuit
        result = self.sampler(seed=seed).run([(isa, bindings(isa, student, weights, angles))]).result()
        return bits_to_probs(student, result[0].data.meas)
