"""``qkd calibrate`` on IBM Runtime (``kind: ibm``): the calibration circuits go through the job ledger.

A head calibration (:mod:`qkd_qiskit.calibrate`) runs each trained unit's circuit on a stratified
subset of the training split (to fit) and of the validation split (to choose the regularisation).
On a device those are QPU jobs, so they are handled like ``qkd submit`` jobs: one job per unit
(its ``samples + val_samples`` inputs as the parameter sets of one PUB) inside a Batch/Session,
each job id written to ``RUN_DIR/jobs/<profile>/jobs.json`` (key ``<unit>@calibration``) right
after submission. Running ``qkd calibrate`` again collects finished jobs by id (real device) or
reruns lost local jobs deterministically (local testing mode), fits the heads of every unit whose
job is done and writes them where :func:`qkd_qiskit.calibrate.load_heads` finds them, so a crash
loses no QPU work. ``--dry-run`` prints the circuits and a QPU-time estimate and submits nothing.

Example:
    >>> rows = calibrate_on_device("runs/xor", "ibm-local-fake-kingston", samples=60, val_samples=30)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..atomic import atomic_write_csv, atomic_write_json
from ..backends import Profile
from ..calibrate import (CALIBRATION_COLUMNS, TRAIN_SUBSET_SEED, VAL_SUBSET_SEED, calibration_folder, fit_head,
                         start_manifest)
from ..data import stratified_subset
from ..rundir import finish_manifest
from ..trained import circuit_angles, group_student, head_logits, load_run, quantum_groups
from .ledger import RESUBMITTABLE, Ledger, locked_ledger
from .plan import (DEFAULT_REP_DELAY, JOB_OVERHEAD_S, Item, circuit_duration, dry_run_backend, estimate_qpu_seconds,
                   ibm_backend, ibm_profile, plan_items)
from .runner import fetch_job, record_job, wait_and_store

SUFFIX = "@calibration"


def job_key(item: Item) -> str:
    """Ledger key of a unit's calibration job (next to its test job, keyed by the unit)."""
    return item.unit.key + SUFFIX


def _subsets(data: Any, samples: int, val_samples: int) -> tuple[np.ndarray, np.ndarray]:
    if samples < 2 or val_samples < 2:
        raise ValueError("samples: need at least 2 training and 2 validation samples")
    return (stratified_subset(data.y_train, samples, seed=TRAIN_SUBSET_SEED),
            stratified_subset(data.y_val, val_samples, seed=VAL_SUBSET_SEED))


def _inputs(items: Sequence[Item], data: Any, tr: np.ndarray, va: np.ndarray) -> dict[str, np.ndarray]:
    """Circuit inputs of every item: training subset rows, then validation subset rows."""
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    out = {}
    for it in items:
        if id(it.net) not in cache:
            cache[id(it.net)] = (circuit_angles(it.net, data.x_train[tr]), circuit_angles(it.net, data.x_val[va]))
        a_tr, a_va = cache[id(it.net)]
        out[job_key(it)] = np.vstack([a_tr[it.m], a_va[it.m]])
    return out


def calibration_dry_run(run_dir: str | Path, spec: str | Path | Profile, samples: int = 300, val_samples: int = 150,
                        students: Sequence[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Print what a device calibration would send (jobs, circuits, shots, QPU estimate); send nothing."""
    run, cfg, data = load_run(run_dir)
    tr, va = _subsets(data, samples, val_samples)
    groups = quantum_groups(run, cfg, students)
    studs = {g.label: group_student(cfg, data, g) for g in groups}
    profile = ibm_profile(spec)
    backend = dry_run_backend(profile, list(studs.values()), log)
    n, total, jobs = len(tr) + len(va), 0.0, 0
    for g in groups:
        st = studs[g.label]
        t = backend.transpiled(st, measured=backend.primitive_for(st) == "sampler")
        rep = getattr(backend.device, "default_rep_delay", None) or DEFAULT_REP_DELAY
        per_job = estimate_qpu_seconds(circuit_duration(t.circuit, backend.device.target), n, profile.shots, rep)
        total, jobs = total + per_job * len(g.units), jobs + len(g.units)
        log(f"{g.label:<12} kd={str(g.kd):<5} calibration jobs={len(g.units)} circuits/job={n} "
            f"({len(tr)} training + {len(va)} validation) shots={profile.shots} est_qpu={per_job:.1f}s/job")
    log(f"total: {jobs} calibration jobs, {jobs * n} circuits x {profile.shots} shots, about {total:.0f} s of QPU "
        f"time on {profile.device} (circuits x shots x (duration + rep delay) + {JOB_OVERHEAD_S:g} s per job); "
        "nothing submitted")
    return {"jobs": jobs, "circuits": jobs * n, "shots": profile.shots, "qpu_seconds": round(total, 1)}


def calibrate_on_device(run_dir: str | Path, spec: str | Path | Profile, samples: int = 300,
                        val_samples: int = 150, students: Sequence[str] | None = None, wait: bool = False,
                        resubmit_failed: bool = False, log: Callable[[str], None] = print) -> list[dict]:
    """Submit (or collect) the calibration jobs of every trained quantum unit and fit the heads of
    those that are done. Returns the calibration rows written so far (see module docstring)."""
    run, cfg, data = load_run(run_dir)
    tr, va = _subsets(data, samples, val_samples)
    groups = quantum_groups(run, cfg, students)
    backend = ibm_backend(spec, [group_student(cfg, data, g) for g in groups])
    dest = calibration_folder(run.root, backend.name)
    info = start_manifest(dest, run, backend, data, tr, va, via="job ledger")
    with locked_ledger(run, backend) as ledger:
        items = [it for it in plan_items(run, cfg, data, groups) if not dest.is_done(it.unit)]
        inputs = _inputs(items, data, tr, va)
        _bring_up_to_date(backend, ledger, items, wait, log)
        again = RESUBMITTABLE if resubmit_failed else ("lost",)  # lost local jobs rerun with the same seeds
        new = [it for it in items if job_key(it) not in ledger.jobs or ledger.jobs[job_key(it)]["status"] in again]
        live = {}
        if new:
            with backend.open_mode() as mode:
                for i, it in enumerate(new, 1):
                    job = backend.submit(it.student, it.weights, inputs[job_key(it)], mode)
                    record_job(ledger, it, job, backend.primitive_for(it.student), len(inputs[job_key(it)]),
                               backend.profile.shots, key=job_key(it))
                    live[job_key(it)] = job
                    log(f"submitted calibration of {it.unit.key}: job {job.job_id()} ({i}/{len(new)})")
        if backend.local or wait:
            wait_and_store(ledger, live, log)
        for it in items:
            if ledger.jobs.get(job_key(it), {}).get("status") == "done":
                _fit_and_store(dest, backend, ledger, it, data, tr, va)
        rows = dest.results()
        atomic_write_csv(dest.root / "results.csv", rows, CALIBRATION_COLUMNS)
        pending = [it.unit.key for it in items if not dest.is_done(it.unit)]
        if pending:
            log(f"{len(pending)} unit(s) not calibrated yet ({', '.join(pending[:6])}{' ...' if len(pending) > 6 else ''}): "
                "their calibration jobs are pending or failed; run qkd calibrate again (--resubmit-failed for failed ones)")
        else:
            finish_manifest(dest.manifest, info)
        return rows


def _bring_up_to_date(backend: Any, ledger: Ledger, items: Sequence[Item], wait: bool,
                      log: Callable[[str], None]) -> None:
    """Jobs recorded by an earlier (perhaps killed) process: fetch by id, or mark lost local ones."""
    for it in items:
        rec = ledger.jobs.get(job_key(it))
        if rec is None or rec["status"] in ("done", "failed", "cancelled", "lost"):
            continue
        if backend.local:  # a local job died with its process: resubmitted, deterministically
            rec["status"] = "lost"
            log(f"{it.unit.key}: local calibration job {rec['job_id']} died with its process; rerunning")
            ledger.save()
        else:
            fetch_job(backend, ledger, job_key(it), wait, log)


def _fit_and_store(dest: Any, backend: Any, ledger: Ledger, it: Item, data: Any, tr: np.ndarray,
                   va: np.ndarray) -> None:
    from sklearn.metrics import f1_score

    readouts = backend.result_readouts(it.student, ledger.load_result(job_key(it)))
    r_tr, r_va = readouts[: len(tr)], readouts[len(tr):]
    head = fit_head(r_tr, data.y_train[tr], r_va, data.y_val[va], data.n_classes)
    raw = float(f1_score(data.y_val[va], head_logits(it.net, it.m, r_va).argmax(1),
                         labels=list(range(data.n_classes)), average="macro", zero_division=0))
    row = {"model": it.unit.model, "role": it.unit.role, "kd": it.unit.kd, "seed": it.unit.seed,
           "backend": backend.name, "samples": int(len(tr)), "val_samples": int(len(va)), "C": head.C,
           "val_f1_raw_head": raw, "val_f1_calibrated": head.val_f1, "shots": backend.shots,
           "calibrate_seconds": None, "job_id": ledger.jobs[job_key(it)]["job_id"]}
    atomic_write_json(dest.unit_dir(it.unit) / "head.json", {"head": asdict(head), "job_id": row["job_id"]})
    atomic_write_json(dest.unit_dir(it.unit) / "result.json", row)
