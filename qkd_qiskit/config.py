"""Experiment configs: YAML validated at load, so a bad field fails before any training starts.

Example:
    >>> cfg = load_config("configs/xor_classical.yaml")  # doctest: +SKIP
    >>> [s.model for s in cfg.students]                   # doctest: +SKIP
    ['linear']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from .catalog import MODEL_NAMES
from .strict import Strict as _Strict
from .strict import read_yaml, validate


class ConfigError(ValueError):
    """A config problem, worded as one line that names the field."""


class TrainConfig(_Strict):
    lr: float = Field(0.1, gt=0)
    max_epochs: int = Field(300, ge=1)
    patience: int = Field(50, ge=1)
    batch_size: int = Field(32, ge=1)


class KDConfig(_Strict):
    ce_weight: float = Field(1.0, ge=0)
    kd_weight: float = Field(1.0, ge=0)
    temperature: float = Field(1.0, gt=0)


_XOR_KEYS = ("n_samples", "n_bits", "split")
_IMAGE_KEYS = ("root", "classes", "per_class", "test_per_class", "val_fraction", "download")


class DataConfig(_Strict):
    """``xor`` (n_samples, n_bits, split) or an image dataset (root, classes, per_class,
    test_per_class, val_fraction, download); ``seed`` for both. Options of the other kind are errors.

    For any dataset, ``n_train`` / ``label_noise`` / ``teacher_data`` change the training split only
    (:mod:`qkd_qiskit.data.training_split`); at their defaults they are left out of dumps, so older
    manifests stay equal and their runs resume."""

    name: Literal["xor", "digits", "mnist", "fashion_mnist", "cifar10"] = "xor"
    n_samples: int = Field(1000, ge=10)
    n_bits: int = Field(64, ge=2)
    seed: int = Field(0, ge=0)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    root: str | None = None
    classes: list[int] | None = None
    per_class: int | None = Field(None, ge=2)  # >= 1 for training and >= 1 for validation
    test_per_class: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    download: bool = True
    n_train: int | None = Field(None, ge=2)
    """Train on a seeded, class-stratified subset of this many training samples (default: all)."""
    label_noise: float = Field(0.0, ge=0, lt=1)
    """Symmetric noise on the training labels: each flips to another class with this probability."""
    teacher_data: Literal["full", "reduced"] = "full"
    """The teacher trains on the full (noisy) training split or on the student's reduced one."""

    @field_validator("classes")
    @classmethod
    def _classes_valid(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) < 2 or len(set(v)) != len(v) or min(v) < 0 or max(v) > 9):
            raise ValueError(f"must be >= 2 distinct class indices in 0..9, got {v}")
        return v

    @model_validator(mode="after")
    def _options_match_dataset(self) -> "DataConfig":
        foreign = _IMAGE_KEYS if self.name == "xor" else _XOR_KEYS
        wrong = [k for k in foreign if k in self.model_fields_set]
        if wrong:
            kind = "xor" if self.name == "xor" else "an image dataset"
            raise ValueError(f"option(s) {wrong} do not apply to {self.name} ({kind}); "
                             f"its options: seed, {', '.join(_XOR_KEYS if self.name == 'xor' else _IMAGE_KEYS)}")
        return self

    @field_validator("split", mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0 or abs(sum(v) - 1) > 1e-9:
            raise ValueError(f"must be three positive fractions summing to 1, got {list(v)}")
        return v

    @model_serializer(mode="wrap")
    def _dump_own_keys(self, handler: Any) -> dict[str, Any]:
        """Dump only this dataset's keys (so XOR manifests are unchanged and resume as before)."""
        out = handler(self)
        foreign = _IMAGE_KEYS if self.name == "xor" else _XOR_KEYS
        defaults = {"n_train": None, "label_noise": 0.0, "teacher_data": "full"}
        return {k: v for k, v in out.items() if k not in foreign and not (k in defaults and v == defaults[k])}

    def loader_options(self) -> dict[str, Any]:
        keys = ("seed", *(_XOR_KEYS if self.name == "xor" else _IMAGE_KEYS))
        return {k: v for k, v in self.model_dump().items() if k in keys}

    def training_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`qkd_qiskit.data.training_datasets`."""
        return {"n_train": self.n_train, "label_noise": self.label_noise, "teacher_data": self.teacher_data,
                "seed": self.seed}


def _known_model(v: str) -> str:
    if v not in MODEL_NAMES:
        raise ValueError(f"unknown model {v!r} (known: {', '.join(MODEL_NAMES)})")
    return v


class ModelConfig(_Strict):
    model: str
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.+]+$")
    """Label of this entry (unit keys, reports); default the model name. Lets one model appear in
    several entries (e.g. a grid of options)."""
    kd: list[bool] = [False, True]
    options: dict[str, Any] = {}
    train: TrainConfig | None = None

    _model = field_validator("model")(_known_model)

    @property
    def label(self) -> str:
        return self.name or self.model

    @model_serializer(mode="wrap")
    def _dump_name_if_set(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if out.get("name") is None:
            out.pop("name", None)
        return out

    @field_validator("kd")
    @classmethod
    def _kd_unique(cls, v: list[bool]) -> list[bool]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must list each of true/false at most once, and at least one")
        return v


class TeacherConfig(_Strict):
    model: str = "teacher_mlp"
    options: dict[str, Any] = {}
    train: TrainConfig = TrainConfig(lr=0.01)

    _model = field_validator("model")(_known_model)


class ExperimentConfig(_Strict):
    name: str
    data: DataConfig = DataConfig()
    seeds: list[int] = Field(default_factory=lambda: list(range(12)))
    teacher: TeacherConfig = TeacherConfig()
    students: list[ModelConfig] = Field(min_length=1)
    student_train: TrainConfig = TrainConfig()
    kd: KDConfig = KDConfig()
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "cuda"] = "cpu"

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError(f"a seed count must be >= 1, got {v}")
            return list(range(v))
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("must be distinct non-negative integers (or a positive count)")
        return v

    @model_validator(mode="after")
    def _students_unique(self) -> "ExperimentConfig":
        names = [s.label for s in self.students]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"students: model(s) {sorted(dup)} listed twice (give the entries distinct `name:`s)")
        return self

    def train_settings(self, student: ModelConfig) -> TrainConfig:
        return student.train or self.student_train


def parse_config(raw: Any, source: str = "config") -> ExperimentConfig:
    """Validate a mapping (e.g. parsed YAML) into an :class:`ExperimentConfig` or raise ConfigError."""
    return validate(ExperimentConfig, raw, source, ConfigError)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    return parse_config(read_yaml(path, ConfigError), str(path))
