"""The job ledger ``RUN_DIR/jobs/<profile>/jobs.json``: every job id, written atomically right after
its job is submitted, plus the raw results (``results/<job_id>.json``, Runtime's JSON encoding) and
the test subset the jobs use; :func:`find_ledger` locates it for ``qkd collect``.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text
from ..backends import IBMRuntimeBackend, Profile, load_profile, parse_profile
from ..data import stratified_subset
from ..outdir import lock_output_dir
from ..rundir import RunDir, now
from ..strict import read_json

JOBS_FILE = "jobs.json"
FINISHED = ("done",)
RESUBMITTABLE = ("failed", "cancelled", "lost")


@contextmanager
def locked_ledger(run: RunDir, backend: IBMRuntimeBackend) -> Iterator["Ledger"]:
    """The (run, profile) ledger, held under an exclusive lock on its folder while the caller works.

    ``qkd submit``, ``qkd collect`` and ``qkd calibrate`` read the ledger, submit or fetch jobs and
    write it back: two of them on the same run and profile at once could submit a unit twice (paid
    QPU time) or, in local testing mode, take the other's live jobs for lost ones and rerun them.
    The second one stops instead with one line naming the folder and the pid holding it
    (:class:`qkd_qiskit.outdir.lock_output_dir`; the kernel drops the lock when a process dies)."""
    with lock_output_dir(run.root / "jobs" / backend.name, option="--backend"):
        yield Ledger.open(run, backend)


def job_status(job: Any) -> str:
    """Runtime job status as an upper-case word (``DONE``, ``ERROR``, ``CANCELLED``, ``QUEUED``, ...)."""
    s = job.status()
    return str(getattr(s, "name", s)).upper()


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
            data = read_ledger(path)
            if data["profile"] != backend.profile.model_dump(mode="json"):
                raise ValueError(f"jobs: {path} was written with a different '{backend.name}' profile; "
                                 "rename the profile (name:) or move the old folder")
            return cls(folder, data)
        data = {"run": str(run.root.resolve()), "profile": backend.profile.model_dump(mode="json"),
                "device": backend.profile.device, "local_testing_mode": backend.local, "created_at": now(),
                "updated_at": now(), "transpilation": {}, "jobs": {}}
        return cls(folder, data)

    @property
    def jobs(self) -> dict[str, dict]:
        return self.data["jobs"]

    def save(self) -> None:
        self.data["updated_at"] = now()
        atomic_write_json(self.folder / JOBS_FILE, self.data)

    def result_path(self, job_id: str) -> Path:
        return self.folder / "results" / f"{job_id}.json"

    def store_result(self, key: str, result: Any) -> None:
        """Persist a finished job's raw result (Runtime JSON), then mark it done."""
        from qiskit_ibm_runtime import RuntimeEncoder

        rec = self.jobs[key]
        atomic_write_text(self.result_path(rec["job_id"]), json.dumps(result, cls=RuntimeEncoder))
        rec.update(status="done", finished_at=now(), error=None)
        self.save()

    def load_result(self, key: str) -> Any:
        """A stored job result; a missing or damaged file is one line naming it."""
        from qiskit_ibm_runtime import RuntimeDecoder

        path = self.result_path(self.jobs[key]["job_id"])
        try:
            return json.loads(path.read_text(), cls=RuntimeDecoder)
        except Exception as err:  # noqa: BLE001 - OSError, JSONDecodeError, or a decoder error on foreign JSON
            why = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            raise ValueError(f"{path}: damaged job result ({why}); run qkd collect again to fetch it anew") from None

    def result_ok(self, key: str) -> bool:
        """Whether a done job's stored result parses (cheap: JSON only, no decoding)."""
        try:
            return isinstance(json.loads(self.result_path(self.jobs[key]["job_id"]).read_bytes()), dict)
        except (OSError, ValueError):
            return False


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
    data = read_ledger(found[0] / JOBS_FILE)
    return found[0], parse_profile(data["profile"], str(found[0] / JOBS_FILE))


def read_ledger(path: Path) -> dict:
    """A ``jobs.json``; a damaged or foreign one is one line naming it."""
    hint = "it holds the submitted job ids: restore it, or move its folder away and submit again"
    data = read_json(path, ValueError, hint)
    if not isinstance(data.get("profile"), dict) or not isinstance(data.get("jobs"), dict):
        raise ValueError(f"{path}: not a job ledger (no profile or jobs); {hint}")
    return data
