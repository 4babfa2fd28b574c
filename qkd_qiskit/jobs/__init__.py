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

Layout: :mod:`.ledger` (the ledger), :mod:`.plan` (items, dry run), :mod:`.runner` (submit, collect).

Example:
    >>> ledger = submit_jobs("runs/xor_quantum", "ibm-local-fake-sherbrooke")  # doctest: +SKIP
    >>> rows, report = collect_jobs("runs/xor_quantum")                         # doctest: +SKIP
"""

from __future__ import annotations

from . import runner
from .ledger import FINISHED, JOBS_FILE, RESUBMITTABLE, Ledger, find_ledger, ledger_data
from .plan import DEFAULT_REP_DELAY, Item, circuit_duration, dry_run, estimate_qpu_seconds, item_angles, plan_items
from .runner import collect_jobs, format_report, submit_jobs

__all__ = ["DEFAULT_REP_DELAY", "FINISHED", "JOBS_FILE", "RESUBMITTABLE", "Item", "Ledger", "circuit_duration",
           "collect_jobs", "dry_run", "estimate_qpu_seconds", "find_ledger", "format_report", "item_angles",
           "ledger_data", "plan_items", "runner", "submit_jobs"]
