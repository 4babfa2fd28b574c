"""What each backend profile runs on, for ``qkd backends``: one row per profile with the device's
headline numbers (from :func:`~qkd_qiskit.backends.devices.device_summary`).

A real IBM device (``ibm_*``) is described by its fake snapshot of the same name when
qiskit-ibm-runtime ships one (``ibm_torino`` -> ``fake_torino``; no account or network needed); the
live device's calibration differs. A noise model loaded from a JSON file has no device numbers.

Example:
    >>> row = profile_summary("aer-fake-kingston")
    >>> row["kind"], row["device"], row["processor"], row["qubits"], row["shots"]
    ('aer', 'fake_kingston', 'Heron r2', 156, 1024)
    >>> profile_summary("statevector")["median_2q_error"] is None
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..shipped import shipped_names
from .devices import device_summary, fake_device
from .profiles import AerProfile, IBMProfile, Profile, load_profile, resolve_profile_path

COLUMNS = ("name", "kind", "device", "processor", "snapshot", "qubits", "median_2q_error",
           "median_readout_error", "shots")
"""Columns of ``qkd backends`` (``--json`` adds ``description``, ``file``, ``two_qubit_gates`` and
``described_by``, the fake snapshot the numbers come from)."""


def _snapshot_of(profile: Profile) -> str | None:
    """The fake snapshot whose numbers describe a profile's device, if there is one."""
    device = getattr(profile, "device", None)
    if device is None:
        return None
    if device.startswith("fake_"):
        return device
    fake = "fake_" + device.removeprefix("ibm_")
    try:
        fake_device(fake)
    except ValueError:
        return None
    return fake


def profile_summary(spec: str | Path) -> dict[str, Any]:
    """One profile (a shipped name or a file) with its device's headline numbers."""
    path = resolve_profile_path(spec)
    profile = load_profile(path)
    snapshot = _snapshot_of(profile)
    device = device_summary(snapshot) if snapshot else {}
    noise_file = profile.noise_model if isinstance(profile, AerProfile) else None
    return {"name": profile.name, "kind": profile.kind,
            "device": getattr(profile, "device", None) or (Path(noise_file).name if noise_file else None),
            "processor": device.get("processor"), "snapshot": device.get("snapshot"),
            "qubits": device.get("qubits"), "median_2q_error": device.get("median_2q_error"),
            "median_readout_error": device.get("median_readout_error"),
            "shots": profile.shots if isinstance(profile, (AerProfile, IBMProfile)) else None,
            "description": profile.description, "file": str(path),
            "two_qubit_gates": device.get("two_qubit_gates"), "described_by": snapshot}


def profile_table() -> list[dict[str, Any]]:
    """:func:`profile_summary` of every shipped profile, sorted by name."""
    return [profile_summary(name) for name in shipped_names("backends")]


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.startswith("median_"):
        return f"{value:.2e}"
    return str(value)


def format_profile_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`profile_table` rows (``-`` where a value does not apply)."""
    heads = ("name", "kind", "device", "processor", "snapshot", "qubits", "2q err (med)", "readout err (med)", "shots")
    table = [heads] + [tuple(_cell(k, r[k]) for k in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(heads))]
    right = {5, 6, 7, 8}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    notes = sorted({f"{r['device']}: numbers of its snapshot {r['described_by']}" for r in rows
                    if r["described_by"] and r["described_by"] != r["device"]})
    return "\n".join(lines + [f"({n}; the live device's calibration differs)" for n in notes])


def format_profile(row: dict[str, Any]) -> str:
    """One profile as ``key: value`` lines (``qkd backends NAME_OR_FILE``), followed by its YAML."""
    keys = ("name", "kind", "description", "device", "described_by", "processor", "snapshot", "qubits",
            "two_qubit_gates", "median_2q_error", "median_readout_error", "shots", "file")
    width = max(len(k) for k in keys)
    lines = [f"{k:<{width}}  {_cell(k, row[k]) if not isinstance(row[k], list) else ', '.join(row[k])}"
             for k in keys]
    return "\n".join(lines + ["", Path(row["file"]).read_text().rstrip()])
