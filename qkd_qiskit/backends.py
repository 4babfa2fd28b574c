"""Where a quantum student runs: backend profiles (YAML) and one execution interface, three kinds.

A *profile* is a small YAML file (``backends/*.yaml``) validated before anything runs:

* ``statevector`` - exact and noiseless, served by the torch engine (and its primitives).
* ``aer`` - Aer with the noise model of a fake IBM device snapshot (or a saved noise-model file).
  Each circuit is transpiled ONCE to the device's ISA with a preset pass manager, then only
  rebound per batch. Evaluation uses, by default (``fast_eval: true``), a density-matrix
  simulation of only the active physical qubits with exact probabilities, sampled with a seeded
  RNG; ``fast_eval: false`` uses Aer's plain SamplerV2 on the full-width ISA circuit.
* ``ibm`` - IBM Runtime ``SamplerV2``/``EstimatorV2`` in Batch (default), Session or job mode.
  A ``fake_*`` device runs in qiskit-ibm-runtime's local testing mode through the same code.
  Credentials come only from Qiskit's saved account or ``QISKIT_IBM_*`` environment variables.

:func:`get_backend` turns a profile into a :class:`Backend` whose :meth:`Backend.readouts`
evaluates a student for one weight vector on a batch of input angles, the quantity the classical
head consumes (``<Z>`` per read-out qubit or read-out outcome probabilities).

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

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from qiskit import QuantumCircuit

PROFILE_DIR = Path(__file__).resolve().parents[1] / "backends"
"""Shipped profiles; ``--backend NAME`` resolves to ``PROFILE_DIR / f"{NAME}.yaml"``."""

TOKEN_ENV = "QISKIT_IBM_TOKEN"
_SECRET_KEYS = {"token", "api_key", "apikey", "password", "secret", "channel", "instance", "url", "credentials"}
_SKIP = frozenset({"barrier", "delay"})


class ProfileError(ValueError):
    """A backend-profile problem, worded as one line that names the field."""


# --------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Common(_Strict):
    name: str = ""
    """Label used in output paths (``jobs/<name>/``); defaults to the profile file's stem."""
    description: str = ""


class StatevectorProfile(_Common):
    """Exact, noiseless simulation (the engine)."""

    kind: Literal["statevector"]


class AerProfile(_Common):
    """Aer with a device noise model; ``device`` and/or ``noise_model`` (a JSON file) is required."""

    kind: Literal["aer"]
    device: str | None = None
    noise_model: str | None = None
    shots: int = Field(1024, gt=0)
    seed: int = Field(1234, ge=0)
    method: Literal["automatic", "statevector", "density_matrix", "matrix_product_state"] = "automatic"
    optimization_level: int = Field(1, ge=0, le=3)
    seed_transpiler: int = Field(1234, ge=0)
    fast_eval: bool = True

    @field_validator("device")
    @classmethod
    def _fake_device(cls, v: str | None) -> str | None:
        if v is not None:
            fake_device(v)
        return v

    @model_validator(mode="after")
    def _has_noise(self) -> "AerProfile":
        if self.device is None and self.noise_model is None:
            raise ValueError("an aer profile needs a device (fake_*) and/or a noise_model file")
        return self


class DynamicalDecoupling(_Strict):
    enable: bool = True
    sequence_type: Literal["XX", "XpXm", "XY4"] = "XX"
    extra_slack_distribution: Literal["middle", "edges"] | None = None
    scheduling_method: Literal["alap", "asap"] | None = None


class Twirling(_Strict):
    enable_gates: bool = False
    enable_measure: bool | None = None
    num_randomizations: int | Literal["auto"] | None = None
    shots_per_randomization: int | Literal["auto"] | None = None
    strategy: Literal["active", "active-accum", "active-circuit", "all"] | None = None


class IBMProfile(_Common):
    """IBM Runtime primitives; a ``fake_*`` device means local testing mode (no account needed)."""

    kind: Literal["ibm"]
    device: str
    mode: Literal["batch", "session", "job"] = "batch"
    shots: int = Field(1024, gt=0)
    seed: int | None = Field(None, ge=0)
    optimization_level: int = Field(1, ge=0, le=3)
    seed_transpiler: int = Field(1234, ge=0)
    max_time: int | None = Field(None, gt=0)
    resilience_level: int | None = Field(None, ge=0, le=2)
    dynamical_decoupling: DynamicalDecoupling | None = None
    twirling: Twirling | None = None

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if v.startswith("fake_"):
            fake_device(v)
        elif not re.fullmatch(r"ibm_[a-z0-9_]+", v):
            raise ValueError(f"{v!r} is neither a fake_* snapshot (local testing mode) nor an IBM device name (ibm_*)")
        return v

    @property
    def local(self) -> bool:
        """True when the device is a fake snapshot: qiskit-ibm-runtime's local testing mode."""
        return self.device.startswith("fake_")

    def primitive_options(self, primitive: str) -> dict[str, Any]:
        """Runtime options of ``SamplerV2``/``EstimatorV2`` (unset fields are left to the service)."""
        opts: dict[str, Any] = {"default_shots": self.shots}
        if self.dynamical_decoupling is not None:
            opts["dynamical_decoupling"] = self.dynamical_decoupling.model_dump(exclude_none=True)
        if self.twirling is not None:
            opts["twirling"] = self.twirling.model_dump(exclude_none=True)
        if primitive == "estimator" and self.resilience_level is not None:
            opts["resilience_level"] = self.resilience_level
        if self.local and self.seed is not None:
            opts["simulator"] = {"seed_simulator": self.seed}
        return opts


Profile = Annotated[Union[StatevectorProfile, AerProfile, IBMProfile], Field(discriminator="kind")]
_PROFILE = TypeAdapter(Profile)


def _one_line(err: ValidationError) -> str:
    """First error as ``field: message`` (the discriminator tag is dropped from the location)."""
    e = err.errors(include_url=False, include_input=False)[0]
    loc = [str(p) for p in e["loc"]]
    if loc and loc[0] in ("statevector", "aer", "ibm"):
        loc = loc[1:]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
        if loc and loc[-1].lower() in _SECRET_KEYS:
            msg += f" (credentials never go in a profile: use a saved Qiskit account or {TOKEN_ENV})"
    if e["type"] == "union_tag_invalid":
        loc, msg = ["kind"], "must be one of statevector, aer, ibm"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{'.'.join(loc) or 'profile'}: {msg}{more}"


def parse_profile(raw: Any, source: str = "profile", base_dir: Path | None = None) -> Profile:
    """Validate a mapping into a profile or raise :class:`ProfileError` (one line)."""
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise ProfileError(f"{source}: kind: missing (one of statevector, aer, ibm)")
    try:
        profile = _PROFILE.validate_python(raw)
    except ValidationError as err:
        raise ProfileError(f"{source}: {_one_line(err)}") from None
    if isinstance(profile, AerProfile) and profile.noise_model is not None:
        path = Path(profile.noise_model)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ProfileError(f"{source}: noise_model: no such file {str(path)!r}")
        profile = profile.model_copy(update={"noise_model": str(path.resolve())})
    return profile


def resolve_profile_path(spec: str | Path) -> Path:
    """A profile file from a path, or from a name of a shipped profile (``backends/<name>.yaml``)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = PROFILE_DIR / f"{spec}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
    raise ProfileError(f"backend: no profile {str(spec)!r} (neither a file nor a shipped profile: {names})")


def load_profile(spec: str | Path | Profile | None = None) -> Profile:
    """Load and validate a profile from a path or a shipped name; ``None`` is exact statevector.

    Example:
        >>> load_profile("aer-fake-sherbrooke").shots
        1024
    """
    if spec is None:
        return StatevectorProfile(kind="statevector", name="statevector")
    if isinstance(spec, (StatevectorProfile, AerProfile, IBMProfile)):
        return spec
    path = resolve_profile_path(spec)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
    profile = parse_profile(raw, str(path), path.parent)
    return profile if profile.name else profile.model_copy(update={"name": path.stem})


# --------------------------------------------------------------------------------------------------
# Devices, noise models, credentials
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def fake_device(name: str) -> Any:
    """Fake IBM device snapshot by backend name, e.g. ``"fake_sherbrooke"`` or ``"fake_manila"``."""
    from qiskit_ibm_runtime import fake_provider

    base = "Fake" + "".join(p.capitalize() for p in name.removeprefix("fake_").split("_"))
    for cls in (base, base + "V2"):
        if name.startswith("fake_") and hasattr(fake_provider, cls):
            return getattr(fake_provider, cls)()
    raise ValueError(f"unknown fake device {name!r} (e.g. fake_sherbrooke, fake_torino, fake_manila; "
                     "see qiskit_ibm_runtime.fake_provider)")


@lru_cache(maxsize=None)
def device_noise_model(name: str) -> Any:
    """Aer noise model of a fake device (cached: building it takes ~1 s for 127 qubits)."""
    from qiskit_aer.noise import NoiseModel

    return NoiseModel.from_backend(fake_device(name))


def save_noise_model(noise_model: Any, path: str | Path) -> Path:
    """Write a noise model as JSON (``NoiseModel.to_dict``), loadable by an ``aer`` profile.

    Example:
        >>> save_noise_model(device_noise_model("fake_manila"), "/tmp/manila.json")  # doctest: +SKIP
    """
    import json

    from .results import atomic_write_text

    atomic_write_text(Path(path), json.dumps(noise_model.to_dict(serializable=True)))
    return Path(path)


@lru_cache(maxsize=None)
def load_noise_model(path: str) -> Any:
    """Noise model from a JSON file of :func:`save_noise_model` (``NoiseModel.from_dict``)."""
    import json

    from qiskit_aer.noise import NoiseModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return NoiseModel.from_dict(json.loads(Path(path).read_text()))


def has_ibm_credentials() -> bool:
    """True if ``QISKIT_IBM_TOKEN`` is set or Qiskit has a saved account (no network access)."""
    if os.environ.get(TOKEN_ENV):
        return True
    try:
        from qiskit_ibm_runtime.accounts import AccountManager

        AccountManager.get(channel=os.environ.get("QISKIT_IBM_CHANNEL") or None)
        return True
    except Exception:  # noqa: BLE001 - any failure to read an account means "no credentials"
        return False


def redact(text: str) -> str:
    """``text`` with the IBM token (if one is set in the environment) replaced by ``***``."""
    token = os.environ.get(TOKEN_ENV)
    return text.replace(token, "***") if token else text


# --------------------------------------------------------------------------------------------------
# Read-out post-processing shared by every kind
# --------------------------------------------------------------------------------------------------


def _outcome_signs(k: int) -> np.ndarray:
    """(2^k, k) matrix of ``1 - 2 bit_j(outcome)``: <Z_j> = probs @ signs."""
    idx = np.arange(2**k)
    return 1.0 - 2.0 * ((idx[:, None] >> np.arange(k)[None, :]) & 1)


def probs_to_readouts(student: Any, probs: np.ndarray) -> np.ndarray:
    """Read-out outcome probabilities (N, 2^k) -> the student's outputs (N, n_outputs)."""
    if student.readout == "probs":
        return probs
    return probs @ _outcome_signs(len(student.readout_qubits))


def bits_to_probs(student: Any, bits: Any) -> np.ndarray:
    """Empirical read-out distribution (N, 2^k) from the ``meas`` BitArray (shape (N,)) of a sampler."""
    k = len(student.readout_qubits)
    kept = bits.slice_bits(list(student.readout_qubits))
    raw = np.asarray(kept.array, dtype=np.int64)  # (N, shots, bytes), big-endian bytes
    ints = (raw << (8 * np.arange(raw.shape[-1] - 1, -1, -1))).sum(-1)
    counts = np.stack([np.bincount(row, minlength=2**k) for row in ints.reshape(-1, ints.shape[-1])])
    return counts / counts.sum(1, keepdims=True)


def check_batch(student: Any, weights: Any, angles: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one weight vector (n_weights,) and input angles (N, n_inputs) as finite float arrays."""
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(angles, dtype=np.float64)
    if w.shape != (len(student.weight_params),):
        raise ValueError(f"weights: expected shape ({len(student.weight_params)},), got {w.shape}")
    if a.ndim != 2 or a.shape[1] != len(student.input_params) or len(a) == 0:
        raise ValueError(f"angles: expected shape (N>0, {len(student.input_params)}), got {a.shape}")
    if not (np.isfinite(w).all() and np.isfinite(a).all()):
        raise ValueError("weights/angles: non-finite values (NaN or inf)")
    return w, a


def bindings(circuit: QuantumCircuit, student: Any, weights: np.ndarray, angles: np.ndarray) -> dict:
    """Parameter values of ``circuit`` (N sets) as a BindingsArray-style dict ``{params: (N, P)}``."""
    order = list(student.input_params) + list(student.weight_params)
    values = np.hstack([angles, np.broadcast_to(weights, (len(angles), len(weights)))])
    present = set(circuit.parameters)
    keep = [i for i, p in enumerate(order) if p in present]
    return {tuple(order[i] for i in keep): values[:, keep]}


# --------------------------------------------------------------------------------------------------
# Transpiled circuits
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transpiled:
    """A student circuit transpiled once to a device ISA, with what reports need about it."""

    circuit: QuantumCircuit
    layout: tuple[int, ...]
    """Physical qubit of each virtual qubit at the start (``initial_index_layout``)."""
    final_layout: tuple[int, ...]
    """Physical qubit holding each virtual qubit at the end (after routing)."""

    @property
    def depth(self) -> int:
        return self.circuit.depth()

    @property
    def two_qubit_gates(self) -> int:
        return self.circuit.num_nonlocal_gates()

    def stats(self) -> dict[str, Any]:
        """Depth, two-qubit gate count and layouts, for manifests and dry runs."""
        return {"depth": self.depth, "two_qubit_gates": self.two_qubit_gates,
                "layout": list(self.layout), "final_layout": list(self.final_layout),
                "ops": {k: int(v) for k, v in self.circuit.count_ops().items()}}


def transpile_once(circuit: QuantumCircuit, pass_manager: Any) -> Transpiled:
    """Run the preset pass manager and record the layouts (a circuit without device is kept as is)."""
    if pass_manager is None:
        n = circuit.num_qubits
        return Transpiled(circuit, tuple(range(n)), tuple(range(n)))
    isa = pass_manager.run(circuit)
    if isa.layout is None:
        n = circuit.num_qubits
        return Transpiled(isa, tuple(range(n)), tuple(range(n)))
    return Transpiled(isa, tuple(isa.layout.initial_index_layout(filter_ancillas=True)),
                      tuple(isa.layout.final_index_layout(filter_ancillas=True)))


def active_qubits(circuit: QuantumCircuit) -> list[int]:
    """Physical qubits that any instruction (other than barrier/delay) touches, sorted."""
    return sorted({circuit.find_bit(q).index for inst in circuit.data
                   if inst.operation.name not in _SKIP for q in inst.qubits})


def compact(circuit: QuantumCircuit, qubits: Sequence[int], drop_measures: bool = False
            ) -> tuple[QuantumCircuit, dict[int, int]]:
    """``circuit`` restricted to ``qubits`` (renumbered 0..k-1), clbits kept; returns the clbit map.

    The map sends each clbit index to the compact qubit last measured into it, which is where a
    read-out qubit ends up after routing. Measurements are dropped with ``drop_measures``.
    """
    pos = {p: i for i, p in enumerate(qubits)}
    out = QuantumCircuit(len(qubits), name=circuit.name)
    for creg in circuit.cregs:
        out.add_register(creg)
    measured: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name in _SKIP:
            continue
        qs = [pos[circuit.find_bit(q).index] for q in inst.qubits]
        if inst.operation.name == "measure":
            measured[circuit.find_bit(inst.clbits[0]).index] = qs[0]
            if drop_measures:
                continue
        out.append(inst.operation, qs, inst.clbits)
    return out, measured


def restrict_noise_model(noise_model: Any, qubits: Sequence[int]) -> Any:
    """The noise model's errors on ``qubits`` only, renumbered 0..k-1 (errors elsewhere dropped).

    Reads Aer's ``NoiseModel`` tables directly (its public API can add errors but not list them
    by qubit); errors that touch any other qubit cannot act on the compact circuit.
    """
    from qiskit_aer.noise import NoiseModel

    pos = {p: i for i, p in enumerate(qubits)}
    out = NoiseModel(basis_gates=noise_model.basis_gates)
    for inst, table in noise_model._local_quantum_errors.items():
        for qs, err in table.items():
            if set(qs) <= pos.keys():
                out.add_quantum_error(err, inst, [pos[q] for q in qs], warnings=False)
    for inst, err in noise_model._default_quantum_errors.items():
        out.add_all_qubit_quantum_error(err, inst, warnings=False)
    for qs, err in noise_model._local_readout_errors.items():
        if set(qs) <= pos.keys():
            out.add_readout_error(err, [pos[q] for q in qs], warnings=False)
    if noise_model._default_readout_error is not None:
        out.add_all_qubit_readout_error(noise_model._default_readout_error, warnings=False)
    return out


def readout_matrix(noise_model: Any, qubit: int) -> np.ndarray:
    """2x2 assignment matrix ``P[measured, true]`` of one qubit (identity without readout error)."""
    err = noise_model._local_readout_errors.get((qubit,), noise_model._default_readout_error)
    if err is None:
        return np.eye(2)
    return np.asarray(err.probabilities, dtype=np.float64).T


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------


class Backend:
    """One execution target for student circuits (see :func:`get_backend`)."""

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

    def transpiled(self, student: Any, measured: bool = True) -> Transpiled:
        """The student's circuit (with final read-out measurements if ``measured``), transpiled once."""
        key = ("isa", student.name, student.n_qubits, student.layers, id(student.circuit), measured)
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


class StatevectorBackend(Backend):
    """Exact readouts from the torch engine (the same numbers training optimises)."""

    kind = "statevector"

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        import torch

        from .engine import compile_student

        w, a = check_batch(student, weights, angles)
        prog = compile_student(student)
        with torch.no_grad():
            out = prog(torch.as_tensor(a), torch.as_tensor(w))
        return out.numpy().astype(np.float64)


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
    def num_qubits(self) -> int | None:
        if self.device is not None:
            return self.device.num_qubits
        qubits = self.noise_model.noise_qubits
        return max(qubits) + 1 if qubits else None

    def pass_manager(self) -> Any:
        from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

        if "pm" not in self._cache:
            p = self.profile
            if self.device is not None:
                pm = generate_preset_pass_manager(optimization_level=p.optimization_level, backend=self.device,
                                                  seed_transpiler=p.seed_transpiler)
            else:
                pm = generate_preset_pass_manager(optimization_level=p.optimization_level,
                                                  basis_gates=list(self.noise_model.basis_gates),
                                                  seed_transpiler=p.seed_transpiler)
            self._cache["pm"] = pm
        return self._cache["pm"]

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {**super().describe(), "device": p.device, "noise_model": p.noise_model, "seed": p.seed,
                "method": p.method, "fast_eval": p.fast_eval, "optimization_level": p.optimization_level,
                "seed_transpiler": p.seed_transpiler, "num_qubits": self.num_qubits}

    def compacted(self, student: Any, measured: bool = True) -> "Compacted":
        """The ISA circuit on its active qubits only, with the noise model restricted to them."""
        key = ("compact", student.name, student.n_qubits, student.layers, id(student.circuit), measured)
        if key not in self._cache:
            self._cache[key] = Compacted.build(self.transpiled(student, measured), self.noise_model)
        return self._cache[key]

    def backend_options(self, method: str | None = None, noise_model: Any = None) -> dict[str, Any]:
        return {"method": method or self.profile.method, "noise_model": noise_model,
                "max_parallel_experiments": 0, "max_parallel_threads": 0}

    def sampler(self, noise_model: Any = None) -> Any:
        """Aer SamplerV2 with this profile's shots, seed and noise (default: the full-width model)."""
        from qiskit_aer.primitives import SamplerV2

        nm = self.noise_model if noise_model is None else noise_model
        return SamplerV2(default_shots=self.profile.shots, seed=self.profile.seed,
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
                probs = cmp.probabilities(student, w, a)
                return probs_to_readouts(student, sample_probs(probs, self.profile.shots, seed))
        return probs_to_readouts(student, self.sampler_probs(student, w, a, seed))

    def sampler_probs(self, student: Any, weights: np.ndarray, angles: np.ndarray, seed: int) -> np.ndarray:
        """The plain path: Aer SamplerV2 on the full-width ISA circuit with the full noise model."""
        from qiskit_aer.primitives import SamplerV2

        isa = self.transpiled(student).circuit
        sampler = SamplerV2(default_shots=self.profile.shots, seed=seed,
                            options={"backend_options": self.backend_options(noise_model=self.noise_model)})
        result = sampler.run([(isa, bindings(isa, student, weights, angles))]).result()
        return bits_to_probs(student, result[0].data.meas)


def sample_probs(probs: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Empirical frequencies of ``shots`` draws from each row of ``probs`` (seeded multinomial)."""
    rng = np.random.default_rng(seed)
    p = np.clip(probs, 0, None)
    p = p / p.sum(1, keepdims=True)
    return rng.multinomial(shots, p) / shots


@dataclass
class Compacted:
    """An ISA circuit cut down to its active physical qubits, plus the matching noise model.

    The fast evaluation path drops the measurements and saves the exact (noisy) probabilities of
    the read-out qubits from one density-matrix run over all parameter bindings; read-out errors
    are then applied classically per qubit. Dropping the mid-circuit measurements of q_nd students
    is exact here because a measured qubit is never touched again and its outcome is never read,
    so the measurement commutes with everything that follows. ``fast_path_ok`` is False (and the
    plain sampler is used) when that or the classical read-out model does not hold: a gate after
    a measurement, quantum noise on ``measure``, correlated read-out errors, or scheduled delays
    with idle relaxation noise.
    """

    circuit: QuantumCircuit
    physical: tuple[int, ...]
    clbit_qubit: dict[int, int]
    noise_model: Any
    unitary: QuantumCircuit
    fast_path_ok: bool
    _sim: Any = field(default=None, repr=False)

    @classmethod
    def build(cls, transpiled: Transpiled, noise_model: Any) -> "Compacted":
        isa = transpiled.circuit
        physical = active_qubits(isa)
        circuit, clbit_qubit = compact(isa, physical)
        unitary, _ = compact(isa, physical, drop_measures=True)
        nm = restrict_noise_model(noise_model, physical)
        delays = "delay" in isa.count_ops() and bool(noise_model._custom_noise_passes)  # idle relaxation
        ok = _measured_never_reused(circuit) and _measurement_noise_is_classical(nm) and not delays
        return cls(circuit, tuple(physical), clbit_qubit, nm, unitary, ok)

    def readout_positions(self, student: Any) -> list[int]:
        """Compact qubit holding each read-out qubit at the end (from the final ``meas[q]`` writes)."""
        return [self.clbit_qubit[q] for q in student.readout_qubits]

    def probabilities(self, student: Any, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Exact noisy read-out distribution (N, 2^k): one density-matrix run, read-out errors applied."""
        from qiskit_aer import AerSimulator

        positions = self.readout_positions(student)
        qc = self.unitary.copy()
        qc.save_probabilities(positions, label="p")
        if self._sim is None:
            self._sim = AerSimulator(method="density_matrix", noise_model=self.noise_model, fusion_threshold=1,
                                     max_parallel_experiments=0, max_parallel_threads=0)
        binds = {p: v for ps, vals in bindings(qc, student, weights, angles).items()
                 for p, v in zip(ps, vals.T)}
        result = self._sim.run(qc, parameter_binds=[binds], shots=1).result()
        probs = np.array([result.data(i)["p"] for i in range(len(angles))], dtype=np.float64)
        return apply_readout_errors(probs, [readout_matrix(self.noise_model, q) for q in positions])


def apply_readout_errors(probs: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Apply per-qubit assignment matrices ``P[measured, true]`` to probabilities (N, 2^k)."""
    k = len(matrices)
    t = probs.reshape(len(probs), *([2] * k))  # axis 1 + (k-1-j) is bit j
    for j, m in enumerate(matrices):
        t = np.moveaxis(np.tensordot(m, t, axes=([1], [k - j])), 0, k - j)
    return t.reshape(len(probs), 2**k)


def _measurement_noise_is_classical(noise_model: Any) -> bool:
    """True if measurements carry only single-qubit read-out errors (no quantum error on ``measure``,
    no correlated read-out error): then read-out noise can be applied to exact probabilities."""
    quantum = "measure" in noise_model._local_quantum_errors or "measure" in noise_model._default_quantum_errors
    correlated = any(len(qs) > 1 for qs in noise_model._local_readout_errors)
    return not quantum and not correlated


def _measured_never_reused(circuit: QuantumCircuit) -> bool:
    """True if no instruction acts on a qubit after it was measured (except further measurements)."""
    measured: set[int] = set()
    for inst in circuit.data:
        qs = {circuit.find_bit(q).index for q in inst.qubits}
        if inst.operation.name == "measure":
            measured |= qs
        elif qs & measured:
            return False
    return True


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

    def pass_manager(self) -> Any:
        from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

        if "pm" not in self._cache:
            self._cache["pm"] = generate_preset_pass_manager(
                optimization_level=self.profile.optimization_level, backend=self.device,
                seed_transpiler=self.profile.seed_transpiler)
        return self._cache["pm"]

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {**super().describe(), "device": p.device, "local_testing_mode": self.local, "mode": p.mode,
                "seed": p.seed, "optimization_level": p.optimization_level, "seed_transpiler": p.seed_transpiler}

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
        return probs_to_readouts(student, bits_to_probs(student, data.meas))

    def readouts(self, student: Any, weights: Any, angles: Any, seed: int | None = None) -> np.ndarray:
        """Synchronous evaluation (submit and wait). For hardware prefer ``qkd submit``/``collect``."""
        with self.open_mode() as mode:
            job = self.submit(student, weights, angles, mode)
            return self.result_readouts(student, job.result())


def get_backend(spec: str | Path | Profile | None = None) -> Backend:
    """A :class:`Backend` from a profile (object, path or shipped name; ``None`` = statevector).

    Example:
        >>> get_backend("aer-fake-sherbrooke").kind
        'aer'
    """
    profile = load_profile(spec)
    cls = {"statevector": StatevectorBackend, "aer": AerBackend, "ibm": IBMRuntimeBackend}[profile.kind]
    return cls(profile)


def prepare_backend(spec: str | Path | Profile | None, students: Sequence[Any]) -> Backend:
    """Load a profile and check everything that can fail before work starts (credentials, width)."""
    backend = get_backend(spec)
    if isinstance(backend, IBMRuntimeBackend):
        backend.check_credentials()
    for student in students:
        backend.check_fits(student)
    return backend
