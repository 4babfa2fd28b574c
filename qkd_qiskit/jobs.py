"""Hardware jobs: submit every trained quantum student to IBM Runtime, record job ids, collect later.

``qkd submit RUN_DIR --backend PROFILE`` transpiles each student architecture once, submits one
job per trained unit (its N test inputs as the parameter sets of one PUB) inside a Runtime
Batch (default) or Session, and writes every job id to ``RUN_DIR/jobs/<profile>/jobs.json``
atomically *right after* that job is submitted - before waiting for anything. ``qkd collect``
resumes from that ledger in a fresh process: it fetches each result by job id, stores the raw
``PrimitiveResult`` (``results/<job_id>.json``, Runtime's JSON encoding) and writes the metrics
(exact vs device macro-F1 per unit, as ``qkd evaluate`` does).

Real hardware vs local testing mode (``device: fake_*``):

* Real device: jobs live on IBM's side. ``submit`` returns once all ids are recorded (``--wait``
  also waits); ``collect`` calls ``QiskitRuntimeService().job(job_id)`` for each unfinished one,
  so any process, any time later, can collect. Failed or cancelled jobs are reported, kept in the
  ledger with their error, and resubmitted by ``qkd submit --resubmit-failed`` (old ids stay in
  ``previous``).
* Local testing mode: a job is a thread inside the submitting process, and qiskit-ibm-runtime's
  ``QiskitRuntimeLocalService`` has no ``job(job_id)``: a local job cannot be fetched by id once
  its process is gone. So ``submit`` waits for each local job and stores its result as soon as it
  is available. If the process dies between recording an id and storing the result, ``collect``
  marks that job ``lost`` and reruns it deterministically (same transpiled circuit from the seeded
  transpiler, same ``seed_simulator``), recording the new id; the rerun gives the same counts.
  (So in local testing mode, do not run ``collect`` while a ``submit`` is still running.)

Example:
    >>> ledger = submit_jobs("runs/xor_quantum", "ibm-local-fake-sherbrooke")  # doctest: +SKIP
    >>> rows, report = collect_jobs("runs/xor_quantum")                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .backends import IBMRuntimeBackend, Profile, ProfileError, fake_device, load_profile, parse_profile, prepare_backend
from .evaluate import (QuantumGroup, circuit_angles, group_student, stratified_subset, head_logits, load_group, load_run, quantum_groups, unit_row,
                       write_tables)
from .results import RunDir, Unit, atomic_write_json, atomic_write_text

JOBS_FILE = "jobs.json"
FINISHED = ("done",)
RESUBMITTABLE = ("failed", "cancelled", "lost")
DEFAULT_REP_DELAY = 250e-6
JOB_OVERHEAD_S = 2.0

_after_record: Callable[[dict], None] | None = None
"""Test seam: called with the ledger after each job id is written (e.g. to simulate a crash)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _status(job: Any) -> str:
    """Runtime job status as an upper-case word (``DONE``, ``ERROR``, ``CANCELLED``, ``QUEUED``, ...)."""
    s = job.status()
    return str(getattr(s, "name", s)).upper()


# --------------------------------------------------------------------------------------------------
# The ledger: RUN_DIR/jobs/<profile>/jobs.json
# --------------------------------------------------------------------------------------------------


class Ledger:
    """Job records of one (run, profile), persisted atomically after every change."""

    def __init__(self, folder: Path, data: dict):
        self.folder = folder
        self.data = data

    @classmethod
    def open(cls, run: RunDir, backend: IBMRuntimeBackend) -> "Ledger":
        folder = run.root / "jobs" / backend.name
        path = folder / JOBS_FILE
        if path.is_file():
            data = json.loads(path.read_text())
            if data["profile"] != backend.profile.model_dump(mode="json"):
                raise ValueError(f"jobs: {path} was written with a different '{backend.name}' profile; "
                                 "rename the profile (name:) or move the old folder")
            return cls(folder, data)
        data = {"run": str(run.root.resolve()), "profile": backend.profile.model_dump(mode="json"),
                "device": backend.profile.device, "local_testing_mode": backend.local, "created_at": _now(),
                "updated_at": _now(), "transpilation": {}, "jobs": {}}
        return cls(folder, data)

    @property
    def jobs(self) -> dict[str, dict]:
        return self.data["jobs"]

    def save(self) -> None:
        self.data["updated_at"] = _now()
        atomic_write_json(self.folder / JOBS_FILE, self.data)

    def result_path(self, job_id: str) -> Path:
        return self.folder / "results" / f"{job_id}.json"

    def store_result(self, key: str, result: Any) -> None:
        """Persist a finished job's raw result (Runtime JSON), then mark it done."""
        from qiskit_ibm_runtime import RuntimeEncoder

        rec = self.jobs[key]
        atomic_write_text(self.result_path(rec["job_id"]), json.dumps(result, cls=RuntimeEncoder))
        rec.update(status="done", finished_at=_now(), error=None)
        self.save()

    def load_result(self, key: str) -> Any:
        from qiskit_ibm_runtime import RuntimeDecoder

        return json.loads(self.result_path(self.jobs[key]["job_id"]).read_text(), cls=RuntimeDecoder)


def ledger_data(ledger: Ledger, data: Any, max_samples: int | None = None) -> Any:
    """``data`` with the test split the ledger's jobs use. The subset is fixed when the first job
    is planned (its indices are stored in jobs.json), so resubmits and collect use the same samples;
    ledgers from before subsets existed use the whole test split."""
    stored = ledger.data.get("test_subset")
    if stored is None:
        idx = stratified_subset(data.y_test, max_samples)
        stored = {"max_samples": max_samples, "n": int(len(idx)),
                  "indices": idx.tolist() if len(idx) < len(data.y_test) else None}
        ledger.data["test_subset"] = stored
    elif max_samples is not None and stored["max_samples"] != max_samples:
        raise ValueError(f"max_samples: the jobs in {ledger.folder} use max_samples={stored['max_samples']}; "
                         "drop --max-samples or use another profile name")
    if stored["indices"] is None:
        return data
    idx = np.asarray(stored["indices"], dtype=np.int64)
    return dataclasses.replace(data, x_test=data.x_test[idx], y_test=data.y_test[idx])


def find_ledger(run_dir: str | Path, spec: str | Path | None) -> tuple[Path, Profile]:
    """The ledger folder and profile for ``collect``: from ``--backend``, or the only one present."""
    root = Path(run_dir) / "jobs"
    if spec is not None:
        profile = load_profile(spec)
        folder = root / (profile.name or profile.kind)
        if not (folder / JOBS_FILE).is_file():
            raise ValueError(f"collect: no {JOBS_FILE} for profile '{profile.name}' in {root}; run qkd submit first")
        return folder, profile
    found = sorted(p.parent for p in root.glob(f"*/{JOBS_FILE}"))
    if not found:
        raise ValueError(f"collect: no submitted jobs in {root}; run qkd submit first")
    if len(found) > 1:
        raise ValueError(f"collect: jobs of several profiles in {root} ({', '.join(p.name for p in found)}); "
                         "choose one with --backend")
    data = json.loads((found[0] / JOBS_FILE).read_text())
    return found[0], parse_profile(data["profile"], str(found[0] / JOBS_FILE))


# --------------------------------------------------------------------------------------------------
# What to submit
# --------------------------------------------------------------------------------------------------


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


def _angles(item: Item, data: Any, cache: dict[tuple, np.ndarray] | None = None) -> np.ndarray:
    """The item's circuit input values on the test split (its own reduction for image students);
    ``cache`` holds them per group, computed for the whole ensemble at once."""
    cache = {} if cache is None else cache
    key = (item.group.label, item.group.kd)
    if key not in cache:
        cache[key] = circuit_angles(item.net, data.x_test)
    return cache[key][item.m]


def _ibm_profile(spec: str | Path | Profile) -> Any:
    profile = load_profile(spec)
    if profile.kind != "ibm":
        raise ProfileError(f"{profile.name}: kind: submit/collect need an ibm profile (got {profile.kind}); "
                           "use qkd evaluate for simulators")
    return profile


def _ibm_backend(spec: str | Path | Profile, students: Sequence[Any]) -> IBMRuntimeBackend:
    """The Runtime backend, after the checks that must pass before anything is submitted."""
    return prepare_backend(_ibm_profile(spec), students)


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


def _dry_run_backend(profile: Any, students: Sequence[Any], log: Callable[[str], None]) -> IBMRuntimeBackend:
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
    """Print and return what ``submit`` would send: circuits, shots, depth, 2q gates, QPU estimate."""
    run, cfg, data = load_run(run_dir)
    n = len(stratified_subset(data.y_test, max_samples))
    groups = quantum_groups(run, cfg, students)
    students = {g.label: group_student(cfg, data, g) for g in groups}
    profile = _ibm_profile(spec)
    backend = _dry_run_backend(profile, list(students.values()), log)
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
                     "circuit_us": round(dur * 1e6, 2), "qpu_seconds": round(per_job * len(g.units), 1)})
    for r in rows:
        log(f"{r['model']:<12} kd={str(r['kd']):<5} jobs={r['jobs']:<3} {r['primitive']:<9} "
            f"circuits/job={r['circuits_per_job']} shots={r['shots']} depth={r['depth']} "
            f"2q={r['two_qubit_gates']} layout={r['layout']} duration={r['circuit_us']}us est_qpu={r['qpu_seconds']}s")
    log(f"total: {sum(r['jobs'] for r in rows)} jobs, about {sum(r['qpu_seconds'] for r in rows):.0f} s of QPU time "
        f"on {profile.device} (rough estimate); nothing submitted")
    return rows


# --------------------------------------------------------------------------------------------------
# Submit
# --------------------------------------------------------------------------------------------------


def _record(ledger: Ledger, item: Item, job: Any, primitive: str, n: int, shots: int) -> None:
    old = ledger.jobs.get(item.unit.key)
    previous = (old.get("previous", []) + [{k: old.get(k) for k in ("job_id", "status", "error")}]) if old else []
    ledger.jobs[item.unit.key] = {
        "model": item.unit.model, "kd": item.unit.kd, "seed": item.unit.seed, "primitive": primitive,
        "job_id": job.job_id(), "status": "submitted", "submitted_at": _now(), "n_circuits": n,
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
        for item in items:
            st = item.student
            ledger.data["transpilation"].setdefault(
                item.group.label, backend.transpiled(st, measured=backend.primitive_for(st) == "sampler").stats())
            angles = _angles(item, data)
            job = backend.submit(st, item.weights, angles, mode)
            _record(ledger, item, job, backend.primitive_for(st), len(angles), backend.profile.shots)
            live[item.unit.key] = job
            log(f"submitted {item.unit.key}: job {job.job_id()}")
    return live


def _wait_store(ledger: Ledger, live: dict[str, Any], log: Callable[[str], None]) -> None:
    """Wait for jobs of this process and store each result (or the failure) as soon as it is known."""
    for key, job in live.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = job.result()
        except Exception as err:  # noqa: BLE001 - a failed job is recorded, never dropped
            _mark_failed(ledger, key, job, err)
            log(f"FAILED {key}: job {ledger.jobs[key]['job_id']}: {ledger.jobs[key]['error']}")
            continue
        ledger.store_result(key, result)


def _mark_failed(ledger: Ledger, key: str, job: Any, err: Exception | None) -> None:
    from .backends import redact

    status = _status(job) if job is not None else "ERROR"
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
    backend = _ibm_backend(spec, [group_student(cfg, data, g) for g in groups])
    ledger = Ledger.open(run, backend)
    data = ledger_data(ledger, data, max_samples)
    todo_keys = {u.key for g in groups for u in g.units
                 if u.key not in ledger.jobs or (resubmit_failed and ledger.jobs[u.key]["status"] in RESUBMITTABLE)}
    skipped = [k for k, r in ledger.jobs.items() if r["status"] in RESUBMITTABLE and k not in todo_keys]
    ledger.save()
    items = [it for it in plan_items(run, cfg, data, groups) if it.unit.key in todo_keys]
    live = _submit_items(backend, ledger, items, data, log)
    if backend.local or wait:
        _wait_store(ledger, live, log)
    if skipped:
        log(f"{len(skipped)} failed/cancelled/lost job(s) not resubmitted ({', '.join(skipped)}); "
            "use --resubmit-failed")
    log(f"{len(live)} job(s) submitted to {backend.profile.device}; ledger {ledger.folder / JOBS_FILE}")
    return ledger.data


# --------------------------------------------------------------------------------------------------
# Collect
# --------------------------------------------------------------------------------------------------


def _fetch(backend: IBMRuntimeBackend, ledger: Ledger, key: str, wait: bool, log: Callable[[str], None]) -> None:
    """Bring one unfinished real-device job up to date via ``service.job(job_id)``."""
    rec = ledger.jobs[key]
    job = backend.service().job(rec["job_id"])
    status = _status(job)
    if status in ("ERROR", "CANCELLED"):
        _mark_failed(ledger, key, job, None)
        return
    if status != "DONE" and not wait:
        if rec["status"] != status.lower():
            rec["status"] = status.lower()
            ledger.save()
        return
    _wait_store(ledger, {key: job}, log)


def _rerun_lost(backend: IBMRuntimeBackend, ledger: Ledger, items: Sequence[Item], data: Any,
                log: Callable[[str], None]) -> None:
    """Local testing mode: jobs whose process died are rerun deterministically (same seeds)."""
    for it in items:
        ledger.jobs[it.unit.key]["status"] = "lost"
        log(f"{it.unit.key}: local job {ledger.jobs[it.unit.key]['job_id']} died with its process; rerunning")
    ledger.save()
    live = _submit_items(backend, ledger, items, data, log)
    _wait_store(ledger, live, log)


def collect_jobs(run_dir: str | Path, spec: str | Path | Profile | None = None, wait: bool = False,
                 log: Callable[[str], None] = print) -> tuple[list[dict], dict[str, list[str]]]:
    """Fetch every recorded job's result by id, compute metrics, write tables; returns (rows, report).

    ``report`` maps a status (done, failed, cancelled, pending, not_submitted) to unit keys.
    """
    folder, profile = find_ledger(run_dir, spec)
    run, cfg, data = load_run(run_dir)
    groups = quantum_groups(run, cfg)
    backend = _ibm_backend(profile, [group_student(cfg, data, g) for g in groups])
    ledger = Ledger.open(run, backend)
    data = ledger_data(ledger, data)
    items = {it.unit.key: it for it in plan_items(run, cfg, data, groups)}
    unfinished = [k for k, r in ledger.jobs.items() if r["status"] not in FINISHED + ("failed", "cancelled")]
    if backend.local:
        _rerun_lost(backend, ledger, [items[k] for k in unfinished if k in items], data, log)
    else:
        for key in unfinished:
            _fetch(backend, ledger, key, wait, log)
    rows = _metrics(ledger, items, data, backend)
    report = _report(ledger, items)
    return rows, report


def _metrics(ledger: Ledger, items: dict[str, Item], data: Any, backend: IBMRuntimeBackend) -> list[dict]:
    """Exact vs device metrics of every done job (written to the ledger folder)."""
    dest = RunDir(ledger.folder)
    angles_cache: dict[tuple, np.ndarray] = {}
    for key, rec in ledger.jobs.items():
        if rec["status"] != "done" or key not in items or dest.is_done(items[key].unit):
            continue
        it = items[key]
        out = backend.result_readouts(it.student, ledger.load_result(key))
        a = _angles(it, data, angles_cache)
        with torch.no_grad():
            exact_out = it.net.quantum.program(torch.as_tensor(a, dtype=it.net.quantum.weights.dtype),
                                               it.net.quantum.weights[it.m]).double().numpy()
        exact_logits = head_logits(it.net, it.m, exact_out)
        row = unit_row(it.unit, backend, data.y_test, data.n_classes, exact_logits, head_logits(it.net, it.m, out),
                       exact_out, out, 0.0, backend.profile.seed)
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
