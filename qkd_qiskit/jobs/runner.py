"""``qkd submit`` and ``qkd collect``: one Runtime job per trained quantum unit, every job id in the
ledger right after submission, results fetched by id (or rerun, for lost local jobs) and scored
exactly as ``qkd evaluate`` scores them. The package docstring (:mod:`qkd_qiskit.jobs`) explains
real devices vs local testing mode.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..atomic import atomic_write_json
from ..backends import IBMRuntimeBackend, Profile, redact
from ..calibrate import calibrated_logits, load_heads
from ..evaluate import evaluation_dir, unit_row, write_tables
from ..rundir import now
from ..trained import group_student, head_logits, load_run, quantum_groups
from .ledger import FINISHED, JOBS_FILE, RESUBMITTABLE, Ledger, find_ledger, job_status, ledger_data, locked_ledger
from .plan import Item, ibm_backend, item_angles, plan_items

_after_record: Callable[[dict], None] | None = None
"""Test seam: called with the ledger after each job id is written (e.g. to simulate a crash)."""


# Submit
# --------------------------------------------------------------------------------------------------


def record_job(ledger: Ledger, item: Item, job: Any, primitive: str, n: int, shots: int,
               key: str | None = None) -> None:
    """Write a submitted job's id to the ledger (under ``key``, default the unit's key) at once."""
    key = item.unit.key if key is None else key
    old = ledger.jobs.get(key)
    previous = (old.get("previous", []) + [{k: old.get(k) for k in ("job_id", "status", "error")}]) if old else []
    ledger.jobs[key] = {
        "model": item.unit.model, "kd": item.unit.kd, "seed": item.unit.seed, "primitive": primitive,
        "job_id": job.job_id(), "status": "submitted", "submitted_at": now(), "n_circuits": n,
        "shots": shots, "error": None, "previous": previous}
    ledger.save()
    if _after_record is not None:
        _after_record(ledger.data)


def _submit_items(backend: IBMRuntimeBackend, ledger: Ledger, items: Sequence[Item], data: Any,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Submit one job per item inside one Batch/Session; each id is on disk before the next submit."""
    live: dict[str, Any] = {}
    if not items:
        return live
    with backend.open_mode() as mode:
        for i, item in enumerate(items, 1):
            st = item.student
            ledger.data["transpilation"].setdefault(
                item.group.label, backend.transpiled(st, measured=backend.primitive_for(st) == "sampler").stats())
            angles = item_angles(item, data)
            job = backend.submit(st, item.weights, angles, mode)
            record_job(ledger, item, job, backend.primitive_for(st), len(angles), backend.profile.shots)
            live[item.unit.key] = job
            log(f"submitted {item.unit.key}: job {job.job_id()} ({i}/{len(items)})")
    return live


def wait_and_store(ledger: Ledger, live: dict[str, Any], log: Callable[[str], None]) -> None:
    """Wait for jobs of this process and store each result (or the failure) as soon as it is known."""
    for i, (key, job) in enumerate(live.items(), 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = job.result()
        except Exception as err:  # noqa: BLE001 - a failed job is recorded, never dropped
            mark_failed(ledger, key, job, err)
            log(f"FAILED {key}: job {ledger.jobs[key]['job_id']}: {ledger.jobs[key]['error']} (job {i}/{len(live)})")
            continue
        ledger.store_result(key, result)
        log(f"job {i}/{len(live)} done: {key}")


def mark_failed(ledger: Ledger, key: str, job: Any, err: Exception | None) -> None:
    status = job_status(job) if job is not None else "ERROR"
    rec = ledger.jobs[key]
    rec["status"] = "cancelled" if status == "CANCELLED" else "failed"
    message = getattr(job, "error_message", lambda: "")() if job is not None else ""
    rec["error"] = redact((message or (f"{type(err).__name__}: {err}" if err else status)).splitlines()[0][:300])
    ledger.save()


def submit_jobs(run_dir: str | Path, spec: str | Path | Profile, resubmit_failed: bool = False,
                wait: bool = False, log: Callable[[str], None] = print,
                students: Sequence[str] | None = None, max_samples: int | None = None) -> dict:
    """Submit a job for every trained quantum unit (of the named ``students`` entries, default all)
    not yet submitted (and failed ones if asked), each on the test split or on a stratified subset
    of ``max_samples`` of it (fixed for the ledger).

    Local testing mode always waits and stores results (its jobs die with this process); on a
    real device the function returns once every id is recorded, unless ``wait``.
    """
    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg, students)
    backend = ibm_backend(spec, [group_student(cfg, data, g) for g in groups])
    with locked_ledger(run, backend) as ledger:
        data = ledger_data(ledger, data, max_samples)
        todo_keys = {u.key for g in groups for u in g.units
                     if u.key not in ledger.jobs or (resubmit_failed and ledger.jobs[u.key]["status"] in RESUBMITTABLE)}
        skipped = [k for k, r in ledger.jobs.items() if r["status"] in RESUBMITTABLE and k not in todo_keys]
        ledger.save()
        items = [it for it in plan_items(run, cfg, data, groups) if it.unit.key in todo_keys]
        live = _submit_items(backend, ledger, items, data, log)
        if backend.local or wait:
            wait_and_store(ledger, live, log)
        if skipped:
            log(f"{len(skipped)} failed/cancelled/lost job(s) not resubmitted ({', '.join(skipped)}); "
                "use --resubmit-failed")
        log(f"{len(live)} job(s) submitted to {backend.profile.device}; ledger {ledger.folder / JOBS_FILE}")
        return ledger.data


# --------------------------------------------------------------------------------------------------
# Collect
# --------------------------------------------------------------------------------------------------


def fetch_job(backend: IBMRuntimeBackend, ledger: Ledger, key: str, wait: bool, log: Callable[[str], None]) -> None:
    """Bring one unfinished real-device job up to date via ``service.job(job_id)``."""
    rec = ledger.jobs[key]
    job = backend.service().job(rec["job_id"])
    status = job_status(job)
    if status in ("ERROR", "CANCELLED"):
        mark_failed(ledger, key, job, None)
        return
    if status != "DONE" and not wait:
        if rec["status"] != status.lower():
            rec["status"] = status.lower()
            ledger.save()
        return
    wait_and_store(ledger, {key: job}, log)


def _rerun_lost(backend: IBMRuntimeBackend, ledger: Ledger, items: Sequence[Item], data: Any,
                log: Callable[[str], None]) -> None:
    """Local testing mode: jobs whose process died are rerun deterministically (same seeds)."""
    for it in items:
        ledger.jobs[it.unit.key]["status"] = "lost"
        log(f"{it.unit.key}: local job {ledger.jobs[it.unit.key]['job_id']} died with its process; rerunning")
    ledger.save()
    live = _submit_items(backend, ledger, items, data, log)
    wait_and_store(ledger, live, log)


def collect_jobs(run_dir: str | Path, spec: str | Path | Profile | None = None, wait: bool = False,
                 log: Callable[[str], None] = print) -> tuple[list[dict], dict[str, list[str]]]:
    """Fetch every recorded job's result by id, compute metrics, write tables; returns (rows, report).

    ``report`` maps a status (done, failed, cancelled, pending, not_submitted) to unit keys.
    """
    folder, profile = find_ledger(run_dir, spec)
    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg)
    backend = ibm_backend(profile, [group_student(cfg, data, g) for g in groups])
    with locked_ledger(run, backend) as ledger:
        data = ledger_data(ledger, data)
        items = {it.unit.key: it for it in plan_items(run, cfg, data, groups)}
        for key, rec in ledger.jobs.items():  # a done job whose stored result was damaged is fetched again
            if rec["status"] == "done" and not ledger.result_ok(key):
                log(f"{ledger.result_path(rec['job_id'])} is missing or damaged: fetching {key} again")
                rec["status"] = "submitted"
        unfinished = [k for k, r in ledger.jobs.items() if r["status"] not in FINISHED + ("failed", "cancelled")]
        if backend.local:
            _rerun_lost(backend, ledger, [items[k] for k in unfinished if k in items], data, log)
        else:
            for key in unfinished:
                fetch_job(backend, ledger, key, wait, log)
        rows = _metrics(ledger, items, data, backend)
        report = _report(ledger, items)
        return rows, report


def _metrics(ledger: Ledger, items: dict[str, Item], data: Any, backend: IBMRuntimeBackend) -> list[dict]:
    """Exact vs device metrics of every done job (written to the ledger folder), with calibrated
    scores for units whose head was calibrated on this profile (``qkd calibrate``)."""
    dest = evaluation_dir(ledger.folder)
    heads = load_heads(ledger.folder.parent.parent, backend.name)  # RUN_DIR/jobs/<profile> -> RUN_DIR
    angles_cache: dict[tuple, np.ndarray] = {}
    for key, rec in ledger.jobs.items():
        if rec["status"] != "done" or key not in items or dest.is_done(items[key].unit):
            continue
        it = items[key]
        out = backend.result_readouts(it.student, ledger.load_result(key))
        a = item_angles(it, data, angles_cache)
        with torch.no_grad():
            exact_out = it.net.quantum.program(torch.as_tensor(a, dtype=it.net.quantum.weights.dtype),
                                               it.net.quantum.weights[it.m]).double().numpy()
        exact_logits = head_logits(it.net, it.m, exact_out)
        row = unit_row(it.unit, backend, data.y_test, data.n_classes, exact_logits, head_logits(it.net, it.m, out),
                       exact_out, out, 0.0, backend.profile.seed, calibrated_logits(heads, it.unit, out))
        row["job_id"] = rec["job_id"]
        atomic_write_json(dest.unit_dir(it.unit) / "result.json", row)
    rows = dest.results()
    write_tables(ledger.folder, rows)
    return rows


def _report(ledger: Ledger, items: dict[str, Item]) -> dict[str, list[str]]:
    report: dict[str, list[str]] = {}
    for key in items:
        status = ledger.jobs.get(key, {}).get("status", "not_submitted")
        status = "pending" if status not in ("done", "failed", "cancelled", "lost", "not_submitted") else status
        report.setdefault(status, []).append(key)
    return report


def format_report(report: dict[str, list[str]], ledger_jobs: dict | None = None) -> str:
    """One line per status with its units; failed ones carry the resubmit hint."""
    lines = []
    for status in ("done", "pending", "failed", "cancelled", "lost", "not_submitted"):
        keys = report.get(status, [])
        if keys:
            lines.append(f"{status}: {len(keys)} ({', '.join(keys)})")
    if any(report.get(s) for s in ("failed", "cancelled", "lost")):
        lines.append("resubmit with: qkd submit RUN_DIR --backend PROFILE --resubmit-failed")
    if report.get("not_submitted"):
        lines.append("submit the rest with: qkd submit RUN_DIR --backend PROFILE")
    return "\n".join(lines)
