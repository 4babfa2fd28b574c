"""Backend profiles: the YAML schema of the three kinds, one-line errors, and loading by path or name.

A profile is validated before anything runs (strict pydantic models from :mod:`qkd_qiskit.strict`:
unknown keys are errors, no type coercion); every problem is one line naming the field. Profiles
never hold credentials: a credential-like key gets a hint instead.

Example:
    >>> load_profile("aer-fake-sherbrooke").shots
    1024
    >>> try:
    ...     parse_profile({"kind": "ibm", "device": "ibm_torino", "token": "x"}, "p.yaml")
    ... except ProfileError as err:
    ...     print(err)
    p.yaml: token: unknown key (credentials never go in a profile: use a saved Qiskit account or QISKIT_IBM_TOKEN)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, field_validator, model_validator

from ..shipped import shipped_dir, shipped_file, shipped_names
from ..strict import Strict, read_yaml, validate
from .devices import TOKEN_ENV, fake_device

PROFILE_DIR = shipped_dir("backends")
"""Shipped profiles: the repository's ``backends/`` folder, package data in an installed wheel
(:mod:`qkd_qiskit.shipped`); ``--backend NAME`` resolves to ``PROFILE_DIR / f"{NAME}.yaml"``."""

KINDS = ("statevector", "aer", "ibm")
_SECRET_KEYS = {"token", "api_key", "apikey", "password", "secret", "channel", "instance", "url", "credentials"}


class ProfileError(ValueError):
    """A backend-profile problem, worded as one line that names the field."""


class _Common(Strict):
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
    optimization_levels: list[Annotated[int, Field(ge=0, le=3)]] | None = Field(None, min_length=1)
    """Depth-aware transpilation: try these preset levels (default: ``optimization_level`` only) ..."""
    transpile_trials: int = Field(1, ge=1, le=64)
    """... with this many transpiler seeds each (``seed_transpiler`` + 0, 1, ...), and keep the ISA
    circuit of highest estimated success probability on the device."""
    fast_eval: bool = True
    mitigation: Literal["none", "mthree"] = "none"
    """Client-side read-out error mitigation of the sampled read-out bits (:mod:`.mitigation`)."""

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


class DynamicalDecoupling(Strict):
    enable: bool = True
    sequence_type: Literal["XX", "XpXm", "XY4"] = "XX"
    extra_slack_distribution: Literal["middle", "edges"] | None = None
    scheduling_method: Literal["alap", "asap"] | None = None


class Twirling(Strict):
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
    """``seed_simulator`` of local testing mode; 0 is refused (qiskit-ibm-runtime reads 0 as "no seed")."""
    optimization_level: int = Field(1, ge=0, le=3)
    seed_transpiler: int = Field(1234, ge=0)
    optimization_levels: list[Annotated[int, Field(ge=0, le=3)]] | None = Field(None, min_length=1)
    """Depth-aware transpilation: try these preset levels (default: ``optimization_level`` only) ..."""
    transpile_trials: int = Field(1, ge=1, le=64)
    """... with this many transpiler seeds each (``seed_transpiler`` + 0, 1, ...), and keep the ISA
    circuit of highest estimated success probability on the device."""
    max_time: int | None = Field(None, gt=0)
    resilience_level: int | None = Field(None, ge=0, le=2)
    mitigation: Literal["none", "mthree"] = "none"
    """Client-side read-out mitigation (mthree) of sampler students' bits; estimator (``<Z>``)
    students use Runtime's ``resilience_level`` (1 = TREX) instead (:mod:`.mitigation`)."""
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

    @field_validator("seed")
    @classmethod
    def _seed_not_zero(cls, v: int | None) -> int | None:
        if v == 0:  # QiskitRuntimeLocalService drops a falsy seed_simulator: the run would not be reproducible
            raise ValueError("must be >= 1: qiskit-ibm-runtime treats seed 0 as no seed at all (unseeded, "
                             "not reproducible); use any other value, or leave it out for no seed")
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


def _refine(error: dict, loc: list[str], msg: str) -> tuple[list[str], str]:
    """Profile wording on top of :func:`qkd_qiskit.strict.one_line`: a hint for credential-like
    keys, and the valid kinds for an unknown ``kind``."""
    if error["type"] == "extra_forbidden" and loc and loc[-1].lower() in _SECRET_KEYS:
        msg += f" (credentials never go in a profile: use a saved Qiskit account or {TOKEN_ENV})"
    if error["type"] == "union_tag_invalid":
        loc, msg = ["kind"], f"must be one of {', '.join(KINDS)}"
    return loc, msg


def parse_profile(raw: Any, source: str = "profile", base_dir: Path | None = None) -> Profile:
    """Validate a mapping into a profile or raise :class:`ProfileError` (one line)."""
    if isinstance(raw, dict) and "kind" not in raw:
        raise ProfileError(f"{source}: kind: missing (one of {', '.join(KINDS)})")
    profile = validate(_PROFILE, raw, source, ProfileError, root="profile", what="a mapping",
                       drop_tags=KINDS, refine=_refine)
    if isinstance(profile, AerProfile) and profile.noise_model is not None:
        path = Path(profile.noise_model)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ProfileError(f"{source}: noise_model: no such file {str(path)!r}")
        profile = profile.model_copy(update={"noise_model": str(path.resolve())})
    return profile


def resolve_profile_path(spec: str | Path) -> Path:
    """A profile file from a path, or from a name of a shipped profile (``backends/<name>.yaml``);
    ``backends/<name>.yaml`` that is not a file here is the shipped one (README commands work anywhere)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = shipped_file("backends", path.name) if path.parent.name in ("", "backends") and len(path.parts) <= 2 \
        else None
    if shipped is not None:
        return shipped
    names = ", ".join(shipped_names("backends"))
    raise ProfileError(f"backend: no profile {str(spec)!r} (neither a file nor a shipped profile: {names})")


def load_profile(spec: str | Path | Profile | None = None) -> Profile:
    """Load and validate a profile from a path or a shipped name; ``None`` is exact statevector.

    Example:
        >>> load_profile(None).name, load_profile("ibm-example").mode
        ('statevector', 'batch')
    """
    if spec is None:
        return StatevectorProfile(kind="statevector", name="statevector")
    if isinstance(spec, (StatevectorProfile, AerProfile, IBMProfile)):
        return spec
    path = resolve_profile_path(spec)
    profile = parse_profile(read_yaml(path, ProfileError), str(path), path.parent)
    return profile if profile.name else profile.model_copy(update={"name": path.stem})
