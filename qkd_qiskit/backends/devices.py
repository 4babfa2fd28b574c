"""Devices: fake IBM snapshots, the preset pass manager to a device ISA, device noise models, and
IBM credentials (never stored by this package; only looked up and redacted).

One home for "which device is ``fake_sherbrooke``" and "how a circuit is transpiled to it": the
Aer and Runtime backends and ``qkd circuits`` (:mod:`qkd_qiskit.circuit_report`) all call
:func:`fake_device` and :func:`preset_pass_manager`.

Example:
    >>> fake_device("fake_manila").num_qubits
    5
    >>> {"fake_kingston", "fake_torino", "fake_sherbrooke"} <= set(fake_device_names())
    True
    >>> preset_pass_manager("fake_manila", seed_transpiler=1) is preset_pass_manager("fake_manila", seed_transpiler=1)
    True
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import Any, Sequence

TOKEN_ENV = "QISKIT_IBM_TOKEN"
CHANNEL_ENV = "QISKIT_IBM_CHANNEL"
DEFAULT_ACCOUNT_NAMES = ("default-ibm-quantum-platform", "default-ibm-cloud")
"""Names ``QiskitRuntimeService.save_account`` gives an account saved without a name."""


@lru_cache(maxsize=None)
def _provider() -> Any:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():  # e.g. fake_nighthawk warns that its error values are not typical
        warnings.simplefilter("ignore", UserWarning)
        return FakeProviderForBackendV2()


def fake_device_names() -> list[str]:
    """Names of every fake device snapshot in ``qiskit_ibm_runtime.fake_provider``."""
    return [backend.name for backend in _provider().backends()]


def fake_device(name: str) -> Any:
    """Fake IBM device snapshot by backend name, e.g. ``"fake_sherbrooke"`` or ``"fake_manila"``
    (``FakeProviderForBackendV2``; one shared instance per name)."""
    from qiskit.providers.exceptions import QiskitBackendNotFoundError

    if name.startswith("fake_"):
        try:
            return _provider().backend(name)
        except QiskitBackendNotFoundError:
            pass
    raise ValueError(f"unknown fake device {name!r} (e.g. fake_sherbrooke, fake_torino, fake_manila; "
                     "see qiskit_ibm_runtime.fake_provider)")


def preset_pass_manager(device: str | Any | None = None, basis_gates: Sequence[str] | None = None,
                        optimization_level: int = 1, seed_transpiler: int | None = None) -> Any:
    """Qiskit's preset pass manager to a device's ISA (a fake device name or a backend object), or
    to ``basis_gates`` with all-to-all coupling; cached per arguments (a ``PassManager`` can be run
    many times: each run starts from the seed again)."""
    backend = fake_device(device) if isinstance(device, str) else device
    basis = None if basis_gates is None else tuple(basis_gates)
    return _preset_pass_manager(backend, basis, optimization_level, seed_transpiler)


@lru_cache(maxsize=None)
def _preset_pass_manager(backend: Any, basis_gates: tuple[str, ...] | None, optimization_level: int,
                         seed_transpiler: int | None) -> Any:
    from qiskit.transpiler import generate_preset_pass_manager

    return generate_preset_pass_manager(optimization_level=optimization_level, backend=backend,
                                        basis_gates=None if basis_gates is None else list(basis_gates),
                                        seed_transpiler=seed_transpiler)


@lru_cache(maxsize=None)
def device_noise_model(name: str) -> Any:
    """Aer noise model of a fake device (cached: building it takes ~1 s for 127 qubits)."""
    from qiskit_aer.noise import NoiseModel

    return NoiseModel.from_backend(fake_device(name))


def device_relaxes_delays(name: str) -> bool:
    """True if :func:`device_noise_model` adds thermal relaxation to ``delay`` instructions.

    ``NoiseModel.from_backend(device)`` (``thermal_relaxation=True``, the default) appends a
    relaxation pass for delays whenever the device reports qubit properties (T1/T2), and only then.
    The pass is not part of the noise model's public tables (nor of ``to_dict``), so it is read off
    the device here; a noise model loaded from JSON never has it.
    """
    return bool(fake_device(name).target.qubit_properties)


def has_ibm_credentials() -> bool:
    """True if ``QISKIT_IBM_TOKEN`` is set or a saved account may serve ``QiskitRuntimeService()``
    (no network access).

    Reads the public ``QiskitRuntimeService.saved_accounts()``: with ``QISKIT_IBM_CHANNEL`` set, an
    account of that channel or one saved under a default name counts (as the service picks them);
    without it any saved account counts, because the service also picks an account marked default
    and that mark is not part of the public listing. An account the service then does not pick
    fails at :meth:`IBMRuntimeBackend.service`, still as one line.
    """
    if os.environ.get(TOKEN_ENV):
        return True
    from qiskit_ibm_runtime import QiskitRuntimeService

    channel = os.environ.get(CHANNEL_ENV) or None
    try:
        accounts = QiskitRuntimeService.saved_accounts()
    except Exception:  # noqa: BLE001 - an unreadable account file means "no credentials"
        return False
    return any(channel is None or account.get("channel") == channel or name in DEFAULT_ACCOUNT_NAMES
               for name, account in accounts.items())


def redact(text: str) -> str:
    """``text`` with the IBM token (if one is set in the environment) replaced by ``***``."""
    token = os.environ.get(TOKEN_ENV)
    return text.replace(token, "***") if token else text
