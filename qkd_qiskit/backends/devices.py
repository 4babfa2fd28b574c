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


def target_error_medians(target: Any) -> tuple[float | None, float | None]:
    """Median error of the 2-qubit gates and median read-out error of a ``qiskit.transpiler.Target``
    (None where the target reports none).

    The 2-qubit median is over every (gate, qubit pair) with a reported error, of every 2-qubit
    instruction of the target (``ecr``, ``cz``, ``cx``, ...; a device with broken couplers reports
    them with error 1, which the median shrugs off); the read-out median is over the ``measure``
    errors of all qubits.

    Example (a hand-made 3-qubit target):
        >>> from qiskit.circuit.library import CZGate, Measure
        >>> from qiskit.transpiler import InstructionProperties, Target
        >>> t = Target(num_qubits=3)
        >>> t.add_instruction(CZGate(), {(0, 1): InstructionProperties(error=0.01),
        ...                              (1, 2): InstructionProperties(error=0.04),
        ...                              (2, 1): InstructionProperties(error=0.02)})
        >>> t.add_instruction(Measure(), {(q,): InstructionProperties(error=e) for q, e in enumerate([0.1, 0.3, 0.2])})
        >>> target_error_medians(t)
        (0.02, 0.2)
    """
    from statistics import median

    two_qubit = []
    for op_name in target.operation_names:
        op = target.operation_from_name(op_name)
        if isinstance(op, type) or getattr(op, "num_qubits", None) != 2:  # variadic (control flow) or not 2q
            continue
        two_qubit += [p.error for p in target[op_name].values() if p is not None and p.error is not None]
    readout = [p.error for p in target["measure"].values() if p is not None and p.error is not None] \
        if "measure" in target.operation_names else []
    return (float(median(two_qubit)) if two_qubit else None, float(median(readout)) if readout else None)


def device_summary(name: str) -> dict[str, Any]:
    """Headline numbers of a fake device snapshot, from its public ``target``, ``configuration()`` and
    ``properties()``: qubits, 2-qubit gate names, processor family and revision (None if the
    snapshot does not say), snapshot date (the properties' ``last_update_date``, None if absent),
    and the medians of :func:`target_error_medians`.

    Example:
        >>> s = device_summary("fake_manila")
        >>> s["device"], s["qubits"], s["two_qubit_gates"], s["processor"]
        ('fake_manila', 5, ['cx'], 'Falcon r5.11')
        >>> 0 < s["median_2q_error"] < 0.1 and 0 < s["median_readout_error"] < 0.1
        True
    """
    backend = fake_device(name)
    target = backend.target
    two_qubit = sorted(n for n in target.operation_names
                       if not isinstance(target.operation_from_name(n), type)
                       and getattr(target.operation_from_name(n), "num_qubits", None) == 2)
    processor = getattr(backend.configuration(), "processor_type", None) or {}
    family = processor.get("family")
    revision = processor.get("revision")
    properties = backend.properties()
    updated = getattr(properties, "last_update_date", None) if properties is not None else None
    median_2q, median_readout = target_error_medians(target)
    return {"device": name, "qubits": backend.num_qubits, "two_qubit_gates": two_qubit,
            "processor": None if family is None else f"{family}" + ("" if revision is None else f" r{revision}"),
            "snapshot": None if updated is None else updated.date().isoformat(),
            "median_2q_error": median_2q, "median_readout_error": median_readout}


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
