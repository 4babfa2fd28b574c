"""What ``qkd submit`` sends: one item per trained quantum unit (its ensemble, index and inputs), the
Runtime backend after every pre-submission check, and the dry run (transpile, count, estimate QPU
time; submit nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..backends import IBMRuntimeBackend, Profile, ProfileError, fake_device, load_profile, prepare_backend
from ..data import stratified_subset
from ..rundir import RunDir, Unit
from ..trained import QuantumGroup, circuit_angles, group_student, load_group, load_run, quantum_groups

DEFAULT_REP_DELAY = 250e-6
JOB_OVERHEAD_S = 2.0


@dataclass
class Item:
    """One unit to run: its model ensemble (exact engine), index in it and test inputs."""

    group: QuantumGroup
    unit: Unit
    m: int
    net: torch.nn.Module

    @property
    def student(self) -> Any:
        return self.net.quantum.student

    @property
    def weights(self) -> np.ndarray:
        return self.net.quantum.weights[self.m].detach().double().numpy()


def plan_items(run: RunDir, cfg: Any, data: Any, groups: Sequence[QuantumGroup]) -> list[Item]:
    """One :class:`Item` per finished quantum unit (ensembles loaded once per group)."""
    items = []
    for g in groups:
        net = load_group(run, cfg, data, g)
        items += [Item(g, u, m, net) for m, u in enumerate(g.units)]
    return items


def item_angles(item: Item, data: Any, cache: dict[tuple, np.ndarray] | None = None) -> np.ndarray:
    """The item's circuit input values on the test split (its own reduction for image students);
    ``cache`` holds them per group, computed for the whole ensemble at once."""
    cache = {} if cache is None else cache
    key = (item.group.label, item.group.kd)
    if key not in cache:
        cache[key] = circuit_angles(item.net, data.x_test)
    return cache[key][item.m]


def ibm_profile(spec: str | Path | Profile) -> Any:
    profile = load_profile(spec)
    if profile.kind != "ibm":
        raise ProfileError(f"{profile.name}: kind: submit/collect need an ibm profile (got {profile.kind}); "
                           "use qkd evaluate for simulators")
    return profile


def ibm_backend(spec: str | Path | Profile, students: Sequence[Any]) -> IBMRuntimeBackend:
    """The Runtime backend, after the checks that must pass before anything is submitted."""
    return prepare_backend(ibm_profile(spec), students)


# --------------------------------------------------------------------------------------------------


# Dry run: transpile, count, estimate; submit nothing
# --------------------------------------------------------------------------------------------------


def circuit_duration(circuit: Any, target: Any) -> float:
    """Critical-path duration (s) of an ISA circuit from the target's instruction durations."""
    ready: dict[int, float] = {}
    for inst in circuit.data:
        qs = tuple(circuit.find_bit(q).index for q in inst.qubits)
        props = target[inst.operation.name].get(qs) if inst.operation.name in target else None
        dur = (props.duration or 0.0) if props is not None else 0.0
        start = max((ready.get(q, 0.0) for q in qs), default=0.0)
        for q in qs:
            ready[q] = start + dur
    return max(ready.values(), default=0.0)


def estimate_qpu_seconds(duration: float, n_circuits: int, shots: int, rep_delay: float = DEFAULT_REP_DELAY,
                         overhead: float = JOB_OVERHEAD_S) -> float:
    """Rough QPU time of one job: ``n_circuits * shots * (duration + rep_delay) + overhead``.

    A lower-bound style estimate: it ignores twirling randomisations, mitigation circuits and
    queueing, which IBM bills or delays separately.
    """
    return n_circuits * shots * (duration + rep_delay) + overhead


def dry_run_backend(profile: Any, students: Sequence[Any], log: Callable[[str], None]) -> IBMRuntimeBackend:
    """The backend to transpile against without submitting: for a real device, the fake snapshot
    of the same name when one exists (no credentials, no network), else the live device."""
    if not profile.local:
        fake = "fake_" + profile.device.removeprefix("ibm_")
        try:
            fake_device(fake)
        except ValueError:
            return prepare_backend(profile, students)
        log(f"dry run: transpiling to the snapshot {fake} of {profile.device} (no service contacted; "
            "the live device's calibration and layout may differ)")
        profile = profile.model_copy(update={"device": fake})
    return prepare_backend(profile, students)


def dry_run(run_dir: str | Path, spec: str | Path | Profile, log: Callable[[str], None] = print,
            students: Sequence[str] | None = None, max_samples: int | None = None) -> list[dict]:
    """Print and return what ``submit`` would send: circuits, shots, depth, 2q gates, QPU estimate.

    One row per (student, kd): ``qpu_seconds_per_job`` is the estimate of one job (one trained unit),
    ``qpu_seconds`` the row's total (``jobs`` of them); the last line sums the rows.
    """
    run, cfg, data = load_run(run_dir)
    n = len(stratified_subset(data.y_test, max_samples))
    groups = quantum_groups(run, cfg, students)
    students = {g.label: group_student(cfg, data, g) for g in groups}
    profile = ibm_profile(spec)
    backend = dry_run_backend(profile, list(students.values()), log)
    rows = []
    for g in groups:
        st = students[g.label]
        measured = backend.primitive_for(st) == "sampler"
        t = backend.transpiled(st, measured=measured)
        dev = backend.device
        rep = getattr(dev, "default_rep_delay", None) or DEFAULT_REP_DELAY
        dur = circuit_duration(t.circuit, dev.target)
        per_job = estimate_qpu_seconds(dur, n, backend.profile.shots, rep)
        rows.append({"model": g.label, "kd": g.kd, "jobs": len(g.units), "primitive": backend.primitive_for(st),
                     "circuits_per_job": n, "shots": backend.profile.shots, "depth": t.depth,
                     "two_qubit_gates": t.two_qubit_gates, "layout": list(t.layout),
                     "estimated_success": t.choice.get("estimated_success"),
                     "optimization_level": t.choice.get("optimization_level"),
                     "circuit_us": round(dur * 1e6, 2), "qpu_seconds_per_job": round(per_job, 1),
                     "qpu_seconds": round(per_job * len(g.units), 1)})
    for r in rows:
        log(f"{r['model']:<12} kd={str(r['kd']):<5} jobs={r['jobs']:<3} {r['primitive']:<9} "
            f"circuits/job={r['circuits_per_job']} shots={r['shots']} depth={r['depth']} "
            f"2q={r['two_qubit_gates']} layout={r['layout']} est_success={r['estimated_success']:.3f} "
            f"duration={r['circuit_us']}us "
            f"est_qpu={r['qpu_seconds_per_job']}s/job, {r['qpu_seconds']}s for this row's {r['jobs']} jobs")
    log(f"total: {sum(r['jobs'] for r in rows)} jobs, about {sum(r['qpu_seconds'] for r in rows):.0f} s of QPU time "
        f"for all of them together on {profile.device} (rough estimate: circuits x shots x (duration + rep delay) "
        f"+ {JOB_OVERHEAD_S:g} s per job); nothing submitted")
    return rows


# --------------------------------------------------------------------------------------------------
