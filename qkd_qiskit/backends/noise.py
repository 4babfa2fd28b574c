"""Noise models through Aer's public API: JSON files, per-qubit restriction, and the read-out queries
of the fast path.

Everything here reads a ``NoiseModel`` through ``to_dict()`` (one record per error: ``type``
``qerror``/``roerror``, ``operations``, ``gate_qubits`` for a local error) and builds one with
``QuantumError.from_dict``, ``ReadoutError`` and the ``add_*`` methods; Aer's private tables are
never touched.

Why restrict at all: Aer serialises the whole noise model for every run (``to_dict(serializable=
True)``: 1-2 s for a 127-qubit device), and its own truncation of idle qubits gives the same
probabilities bitwise as the restricted model but 14-21x slower per call (measured for q2 on
fake_sherbrooke/fake_torino: 1.9 s / 3.3 s against 0.14 s / 0.16 s). The compact circuits of the fast
path and of noisy training therefore run with :func:`restrict_noise_model`.

Example:
    >>> from qkd_qiskit.backends.devices import device_noise_model
    >>> nm = restrict_noise_model(device_noise_model("fake_manila"), [3, 4])
    >>> nm.noise_qubits, readout_matrix(nm, 0).shape, measurement_noise_is_classical(nm)
    ([0, 1], (2, 2), True)
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError

from ..atomic import atomic_write_text
from ..strict import read_json

def save_noise_model(noise_model: Any, path: str | Path) -> Path:
    """Write a noise model as JSON (``NoiseModel.to_dict``), loadable by an ``aer`` profile.

    Example:
        >>> save_noise_model(device_noise_model("fake_manila"), "/tmp/manila.json")  # doctest: +SKIP
    """
    atomic_write_text(Path(path), json.dumps(noise_model.to_dict(serializable=True)))
    return Path(path)


@lru_cache(maxsize=None)
def load_noise_model(path: str) -> Any:
    """Noise model from a JSON file of :func:`save_noise_model` (``NoiseModel.from_dict``); a file
    that is not one is a one-line ValueError naming it."""
    raw = read_json(Path(path), ValueError, "noise_model must be a JSON file written by save_noise_model")
    if not isinstance(raw.get("errors"), list):
        raise ValueError(f"{path}: not an Aer noise model (no 'errors' list; write one with save_noise_model)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return NoiseModel.from_dict(raw)
    except Exception as err:  # noqa: BLE001 - from_dict raises KeyError, TypeError, ... on foreign JSON
        why = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        raise ValueError(f"{path}: not an Aer noise model ({type(err).__name__}: {why})") from None


def noise_errors(noise_model: Any) -> list[dict]:
    """``noise_model.to_dict()["errors"]``: one record per error (a restricted model's own records,
    not copied: do not edit them). 0.5-1.5 s for a 127-qubit device: cache it with the model."""
    if isinstance(noise_model, RestrictedNoiseModel) and noise_model.records is not None:
        return noise_model.records
    return noise_model.to_dict()["errors"]


def _jsonable(obj: Any) -> Any:
    """What ``NoiseModel.to_dict(serializable=True)`` makes of non-JSON values."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _drops_records(method: Callable) -> Callable:
    """A ``NoiseModel`` method that edits the error tables; afterwards ``to_dict`` serialises them."""
    @functools.wraps(method)
    def edit(self: "RestrictedNoiseModel", *args: Any, **kwargs: Any) -> None:
        method(self, *args, **kwargs)
        self.records = None
    return edit


class RestrictedNoiseModel(NoiseModel):
    """A noise model made of error records of another one (``to_dict`` records), serialised exactly.

    Each record is rebuilt with the public ``QuantumError.from_dict`` / ``ReadoutError`` and added
    with ``add_quantum_error`` / ``add_readout_error``. Rebuilding renormalises an error's
    probabilities (``p / sum(p)``), which moves some by one ulp, and ``NoiseModel.from_dict`` would
    moreover turn ``id``/``x``/``y``/``z`` into unitary matrices: measured against the previous
    restriction, probabilities moved by up to 1.6e-15 and Aer's EstimatorV2 sampled other values
    (up to 2e-3). Aer reads a noise model only through ``to_dict(serializable=True)`` (besides
    ``basis_gates`` and noise passes, of which a restricted model has none), so :meth:`to_dict` hands out the original records and a simulation is bitwise
    that of the original errors. Adding an error afterwards drops the records (``to_dict`` then
    serialises the tables as Aer does).
    """

    def __init__(self, basis_gates: Sequence[str] | None = None, records: Sequence[dict] = ()):
        super().__init__(basis_gates=basis_gates)
        for record in records:
            self._add(record)
        self.records: list[dict] | None = list(records)

    def _add(self, record: dict) -> None:
        where = record.get("gate_qubits") or [None]
        if record["type"] == "qerror":
            error = QuantumError.from_dict(record)
            for qubits in where:
                if qubits is None:
                    self.add_all_qubit_quantum_error(error, record["operations"], warnings=False)
                else:
                    self.add_quantum_error(error, record["operations"], qubits, warnings=False)
        else:
            readout = ReadoutError(record["probabilities"])
            for qubits in where:
                if qubits is None:
                    self.add_all_qubit_readout_error(readout, warnings=False)
                else:
                    self.add_readout_error(readout, qubits, warnings=False)

    add_all_qubit_quantum_error = _drops_records(NoiseModel.add_all_qubit_quantum_error)
    add_quantum_error = _drops_records(NoiseModel.add_quantum_error)
    add_all_qubit_readout_error = _drops_records(NoiseModel.add_all_qubit_readout_error)
    add_readout_error = _drops_records(NoiseModel.add_readout_error)

    def to_dict(self, serializable: bool = False) -> dict:
        if self.records is None:
            return super().to_dict(serializable)
        if serializable:
            return json.loads(json.dumps({"errors": self.records}, default=_jsonable))
        return {"errors": copy.deepcopy(self.records)}


def restrict_noise_model(noise_model: Any, qubits: Sequence[int], records: list[dict] | None = None
                         ) -> RestrictedNoiseModel:
    """The noise model's errors on ``qubits`` only, renumbered 0..k-1 (errors that touch any other
    qubit cannot act on the compact circuit and are dropped; all-qubit errors are kept).
    ``records``: the model's :func:`noise_errors`, if the caller has them cached."""
    pos = {p: i for i, p in enumerate(qubits)}
    kept = []
    for record in noise_errors(noise_model) if records is None else records:
        where = record.get("gate_qubits")
        if where is None:
            kept.append(record)
            continue
        inside = [tuple(pos[q] for q in qs) for qs in where if set(qs) <= pos.keys()]
        if inside:
            kept.append({**record, "gate_qubits": inside})
    return RestrictedNoiseModel(noise_model.basis_gates, kept)


def readout_matrix(noise_model: Any, qubit: int) -> np.ndarray:
    """2x2 assignment matrix ``P[measured, true]`` of one qubit (identity without readout error)."""
    default = None
    for record in noise_errors(noise_model):
        if record["type"] != "roerror":
            continue
        where = record.get("gate_qubits")
        if where is None:
            default = record
        elif (qubit,) in {tuple(qs) for qs in where}:
            return np.asarray(record["probabilities"], dtype=np.float64).T
    return np.eye(2) if default is None else np.asarray(default["probabilities"], dtype=np.float64).T


def measurement_noise_is_classical(noise_model: Any) -> bool:
    """True if measurements carry only single-qubit read-out errors (no quantum error on ``measure``,
    no correlated read-out error): then read-out noise can be applied to exact probabilities."""
    records = noise_errors(noise_model)
    quantum = any(r["type"] == "qerror" and "measure" in r["operations"] for r in records)
    correlated = any(r["type"] == "roerror" and len(qs) > 1 for r in records for qs in r.get("gate_qubits") or ())
    return not quantum and not correlated
