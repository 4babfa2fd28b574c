"""Trained students of a run directory, rebuilt: the one home for turning ``units/*/checkpoint.pt``
back into models (circuit, weights, head and reduction), used by training (the teacher's logits),
noisy evaluation and hardware jobs alike.

A model is rebuilt exactly as training built it: the same registry builder, options and
initialisation generators, then the saved per-model states are loaded.

Example:
    >>> run, cfg, data = load_run("runs/piperno2024")            # doctest: +SKIP
    >>> group = quantum_groups(run, cfg)[0]                       # doctest: +SKIP
    >>> net = load_group(run, cfg, data, group)                   # doctest: +SKIP
    >>> angles = circuit_angles(net, data.x_test)                 # (M, N, n_inputs)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .catalog import QUANTUM_STUDENT_MODELS
from .config import ExperimentConfig, parse_config
from .data import Dataset, load_dataset
from .models import NEEDS_IMAGE_SHAPE, NoisyStudent, build_model, load_model_states, saved_terms
from .rundir import RunDir, RunFileError, Unit, training_dir

QNN_OPTIONS = ("backend", "gradient")
"""Student options that only choose how a circuit was trained, not what it is (dropped on rebuild)."""


# --------------------------------------------------------------------------------------------------
# Building models for units
# --------------------------------------------------------------------------------------------------


def init_generators(model: str, seeds: Sequence[int]) -> list[torch.Generator]:
    """Initialisation generators: one per seed, independent of which other seeds share the batch."""
    offset = sum(ord(c) for c in model) * 1009
    return [torch.Generator().manual_seed(int(s) * 100003 + offset) for s in seeds]


def torch_dtype(cfg: ExperimentConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def torch_device(cfg: ExperimentConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no CUDA device is available here (use device: cpu)")
    return torch.device(cfg.device)


def build_for_units(cfg: ExperimentConfig, data: Dataset, model: str, options: dict,
                    seeds: Sequence[int], label: str | None = None) -> torch.nn.Module:
    """Ensemble of ``model`` for ``seeds``; ``label`` (a student entry's name, default ``model``) seeds
    the initialisation. Image models get the dataset's ``image_shape``."""
    if model in NEEDS_IMAGE_SHAPE and data.image_shape is not None:
        options = {**options, "image_shape": data.image_shape}
    if options.get("embedding_cx") is not None and "embedding_terms" not in options:
        options = {**options, "train_features": data.x_train}  # the approximate embedding is fitted on it
    net = build_model(model, data.n_features, data.n_classes, init_generators(label or model, seeds),
                      torch_dtype(cfg), **options)
    return net.to(torch_device(cfg))


def model_of(cfg: ExperimentConfig, label: str) -> tuple[str, dict]:
    """Registry model and options of a student unit label (a student entry's name or model)."""
    for st in cfg.students:
        if st.label == label:
            return st.model, st.options
    return label, {}


def unit_model(cfg: ExperimentConfig, unit: Unit) -> str:
    """Registry model of a unit (the teacher's, or its student entry's)."""
    return model_of(cfg, unit.model)[0] if unit.role == "student" else cfg.teacher.model


def load_trained(run: RunDir, units: Sequence[Unit], cfg: ExperimentConfig, data: Dataset,
                 options: dict) -> torch.nn.Module:
    """Rebuild the ensemble of finished ``units`` (same model) from their checkpoints."""
    states = [run.load_checkpoint(u)["state"] for u in units]
    return from_states(cfg, data, units, options, states, run.unit_dir(units[0]).parent)


def from_states(cfg: ExperimentConfig, data: Dataset, units: Sequence[Unit], options: dict,
                states: Sequence[dict], where: Any = "states") -> torch.nn.Module:
    """Rebuild the ensemble of ``units`` (same model) from their checkpoint states (``where`` they
    came from names them in the error when they do not fit): what a worker without the run
    folder does with the states the driver sent it. A student trained through noise (option
    ``noise``) comes back on the exact engine (:meth:`~qkd_qiskit.models.NoisyStudent.exact`) with
    its very circuit, embedding barrier included, so backends transpile what training saw."""
    net = build_for_units(cfg, data, unit_model(cfg, units[0]), options, [u.seed for u in units], units[0].model)
    try:
        net = load_model_states(net, list(states))
    except (KeyError, RuntimeError, ValueError) as err:  # a checkpoint of another model or config
        why = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise RunFileError(f"{where}: checkpoints of {units[0].model} do not fit the "
                           f"model of the run's config ({why})") from None
    return net.exact() if isinstance(net, NoisyStudent) else net


# --------------------------------------------------------------------------------------------------
# Trained quantum students of a run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantumGroup:
    """The finished units of one (quantum student entry, kd) pair, loaded together as one ensemble.

    ``label`` is the student entry's name (unit folders and result rows use it); ``model`` is its
    registry model (``hea``, ``q2``, ``hasan``, ...)."""

    label: str
    model: str
    kd: bool
    options: dict
    units: tuple[Unit, ...]


def load_run(run_dir: str | Path) -> tuple[RunDir, ExperimentConfig, Dataset]:
    """The run folder, its resolved config (from ``manifest.json``) and its dataset."""
    run = training_dir(run_dir)
    if not run.manifest.is_file():
        raise ValueError(f"run: {run.root} has no manifest.json (not a `qkd run` output folder)")
    manifest = run.read_manifest()
    if "config" not in manifest:
        raise ValueError(f"run: {run.root} is not a `qkd run` output folder (its manifest.json has no config)")
    cfg = parse_config(manifest["config"], str(run.manifest))
    return run, cfg, load_dataset(cfg.data.name, **cfg.data.loader_options())


def quantum_groups(run: RunDir, cfg: ExperimentConfig, students: Sequence[str] | None = None) -> list[QuantumGroup]:
    """Finished quantum-student units of the run, grouped by (student entry, kd); raises if none.

    ``students`` keeps only the named student entries (labels); an unknown name is an error."""
    labels = [st.label for st in cfg.students if st.model in QUANTUM_STUDENT_MODELS]
    unknown = sorted(set(students or ()) - set(labels))
    if unknown:
        raise ValueError(f"students: {', '.join(unknown)} not among the run's quantum students "
                         f"({', '.join(labels) or 'none'})")
    groups = []
    for st in cfg.students:
        if st.model not in QUANTUM_STUDENT_MODELS or (students and st.label not in students):
            continue
        options = {k: v for k, v in st.options.items() if k not in QNN_OPTIONS}
        for kd in st.kd:
            units = tuple(u for s in cfg.seeds if run.is_done(u := Unit(st.label, kd, s)))
            if units:
                groups.append(QuantumGroup(st.label, st.model, kd, _with_saved_terms(run, options, units[0]), units))
    if not groups:
        raise ValueError(f"run: {run.root} holds no trained quantum student "
                         f"(models: {', '.join(QUANTUM_STUDENT_MODELS)})")
    return groups


def _with_saved_terms(run: RunDir, options: dict, unit: Unit) -> dict:
    """Options that rebuild the unit's very circuit: an approximate embedding (``embedding_cx``) gets
    the Walsh terms saved in the unit's checkpoint (fitted on the training split when it trained)."""
    if options.get("embedding_cx") is None:
        return options
    terms = saved_terms(run.load_checkpoint(unit)["state"])
    if terms is None:
        raise RunFileError(f"{run.unit_dir(unit) / 'checkpoint.pt'}: no embedding_terms in a checkpoint of a student "
                           "with options.embedding_cx; delete the unit and resume the run")
    return {**options, "embedding_terms": terms}


def load_group(run: RunDir, cfg: ExperimentConfig, data: Dataset, group: QuantumGroup) -> torch.nn.Module:
    """The exact-engine ensemble of a group's units, weights from their checkpoints (see :func:`from_states`)."""
    return load_trained(run, list(group.units), cfg, data, dict(group.options)).eval()


def group_student(cfg: ExperimentConfig, data: Dataset, group: QuantumGroup) -> Any:
    """The group's :class:`~qkd_qiskit.circuits.StudentCircuit`, built exactly as training built it
    (same registry builder and options; no weights are loaded)."""
    return build_for_units(cfg, data, group.model, dict(group.options), [0], group.label).quantum.student


def circuit_angles(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Input-parameter values ``(M, N, n_inputs)`` of each model of an ensemble for features ``x``.

    The circuit embeds ``net.circuit_features(x)``: the raw features for Piperno students, the
    output of the (possibly trained, per-model) reduction for image students."""
    m = net.quantum.weights.shape[0]
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).unsqueeze(0).expand(m, -1, -1)
    with torch.no_grad():
        feats = net.circuit_features(xt).double().cpu().numpy()
    return np.stack([np.asarray(net.quantum.student.input_angles(f), dtype=np.float64) for f in feats])


def head_logits(net: torch.nn.Module, m: int, readouts: np.ndarray, statistics: Any = None) -> np.ndarray:
    """Logits (N, C) of model ``m``'s classical head applied to given circuit readouts (N, n_out).

    A student with a read-out normalisation (option ``readout_norm``) standardises them first, with
    its trained statistics, or with ``statistics`` ``(mean, var)`` when given: e.g.
    ``models.readout_statistics`` of the backend's read-outs of training samples (QuantumNAT's
    post-measurement normalisation; it cancels an affine shrink ``a * r + c`` of the read-outs by
    noise). Students without one ignore ``statistics``."""
    ref = next(net.head.parameters())
    x = torch.zeros(net.quantum.weights.shape[0], *readouts.shape, dtype=ref.dtype)
    x[m] = torch.as_tensor(readouts, dtype=ref.dtype)
    with torch.no_grad():
        out = net.readout_logits(x, statistics) if hasattr(net, "readout_logits") else net.head(x)
        return out[m].double().numpy()
