"""What `qkd submit` / `qkd collect` tell a person: overall job counts, a labelled QPU estimate, and
the exact-vs-device figure."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qkd_qiskit import jobs


@pytest.fixture(scope="module")
def run(tiny_q2_run, tmp_path_factory):
    """A private copy of the shared tiny run (submit writes jobs/ into it)."""
    return Path(shutil.copytree(tiny_q2_run, tmp_path_factory.mktemp("runs") / "run"))


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "local-manila.yaml"
    path.write_text("kind: ibm\ndevice: fake_manila\nmode: batch\nshots: 128\nseed: 7\n")
    return path


def test_dry_run_labels_the_qpu_estimate_per_job_and_in_total(run, profile):
    lines: list[str] = []
    rows = jobs.dry_run(run, profile, log=lines.append)
    for r, line in zip(rows, lines):
        assert r["qpu_seconds"] == pytest.approx(r["qpu_seconds_per_job"] * r["jobs"], abs=0.1 * r["jobs"])
        assert f"est_qpu={r['qpu_seconds_per_job']}s/job, {r['qpu_seconds']}s for this row's {r['jobs']} jobs" in line
    assert "for all of them together" in lines[-1] and "nothing submitted" in lines[-1]


def test_local_submit_counts_jobs_and_collect_draws_the_figure(run, profile):
    lines: list[str] = []
    jobs.submit_jobs(run, profile, log=lines.append)
    submitted = [line for line in lines if line.startswith("submitted ")]
    assert [re.search(r"\((\d+)/(\d+)\)$", s).groups() for s in submitted] == [("1", "2"), ("2", "2")]
    done = [line for line in lines if line.startswith("job ")]
    assert [d.split(" done")[0] for d in done] == ["job 1/2", "job 2/2"]
    rows, report = jobs.collect_jobs(run, profile, log=lines.append)
    assert len(report["done"]) == 2 and len(rows) == 2
    png = (run / "jobs" / "local-manila" / "exact_vs_backend.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
