"""Where a quantum student runs: backend profiles (YAML) and one execution interface, three kinds.

A *profile* is a small YAML file (``backends/*.yaml``) validated before anything runs
(:mod:`.profiles`):

* ``statevector`` - exact and noiseless, served by the torch engine (:mod:`.exact`).
* ``aer`` - Aer with the noise model of a fake IBM device snapshot (or a saved noise-model file).
  Each circuit is transpiled ONCE to the device's ISA with a preset pass manager (:mod:`.devices`,
  :mod:`.transpile`), then only rebound per batch. Evaluation uses, by default (``fast_eval:
  true``), a density-matrix simulation of only the active physical qubits with exact
  probabilities, sampled with a seeded RNG (:mod:`.fastpath`, noise restricted by :mod:`.noise`);
  ``fast_eval: false`` uses Aer's plain SamplerV2 on the full-width ISA circuit (:mod:`.aer`).
* ``ibm`` - IBM Runtime ``SamplerV2``/``EstimatorV2`` in Batch (default), Session or job mode.
  A ``fake_*`` device runs in qiskit-ibm-runtime's local testing mode through the same code
  (:mod:`.runtime`). Credentials come only from Qiskit's saved account or ``QISKIT_IBM_*``
  environment variables.

:func:`get_backend` turns a profile into a :class:`Backend` whose :meth:`Backend.readouts`
evaluates a student for one weight vector on a batch of input angles, the quantity the classical
head consumes (``<Z>`` per read-out qubit or read-out outcome probabilities; :mod:`.batch`).

Example:
    >>> import numpy as np
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("q2")
    >>> angles = st.input_angles(np.eye(64)[:3] + 1.0)
    >>> w = np.zeros(len(st.weight_params))
    >>> get_backend("statevector").readouts(st, w, angles).shape
    (3, 4)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .aer import AerBackend
from .base import Backend
from .batch import bindings, bits_to_probs, check_batch, probs_to_readouts
from .devices import (TOKEN_ENV, device_noise_model, device_relaxes_delays, fake_device, fake_device_names,
                      has_ibm_credentials, preset_pass_manager, redact)
from .exact import StatevectorBackend
from .fastpath import Compacted, apply_readout_errors, memo_key, memoised, sample_probs
from .noise import (RestrictedNoiseModel, load_noise_model, measurement_noise_is_classical, noise_errors,
                    readout_matrix, restrict_noise_model, save_noise_model)
from .profiles import (PROFILE_DIR, AerProfile, DynamicalDecoupling, IBMProfile, Profile, ProfileError,
                       StatevectorProfile, Twirling, load_profile, parse_profile, resolve_profile_path)
from .runtime import IBMRuntimeBackend
from .transpile import Transpiled, active_qubits, compact, transpile_once

__all__ = [
    "PROFILE_DIR", "TOKEN_ENV", "AerBackend", "AerProfile", "Backend", "Compacted", "memo_key", "memoised", "DynamicalDecoupling",
    "IBMProfile", "IBMRuntimeBackend", "Profile", "ProfileError", "RestrictedNoiseModel", "StatevectorBackend",
    "StatevectorProfile", "Transpiled", "Twirling", "active_qubits", "apply_readout_errors", "bindings",
    "bits_to_probs", "check_batch", "compact", "device_noise_model", "device_relaxes_delays", "fake_device",
    "fake_device_names", "get_backend", "has_ibm_credentials", "load_noise_model", "load_profile",
    "measurement_noise_is_classical", "noise_errors", "parse_profile", "prepare_backend", "preset_pass_manager",
    "probs_to_readouts", "readout_matrix", "redact", "resolve_profile_path", "restrict_noise_model",
    "sample_probs", "save_noise_model", "transpile_once",
]

_KINDS: dict[str, type[Backend]] = {"statevector": StatevectorBackend, "aer": AerBackend, "ibm": IBMRuntimeBackend}


def get_backend(spec: str | Path | Profile | None = None) -> Backend:
    """A :class:`Backend` from a profile (object, path or shipped name; ``None`` = statevector).

    Example:
        >>> get_backend("aer-fake-sherbrooke").kind
        'aer'
    """
    profile = load_profile(spec)
    return _KINDS[profile.kind](profile)


def prepare_backend(spec: str | Path | Profile | None, students: Sequence[Any]) -> Backend:
    """Load a profile and check everything that can fail before work starts (credentials, width)."""
    backend = get_backend(spec)
    if isinstance(backend, IBMRuntimeBackend):
        backend.check_credentials()
    for student in students:
        backend.check_fits(student)
    return backend
