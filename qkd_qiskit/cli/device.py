"""``qkd evaluate``, ``qkd calibrate``, ``qkd noise``, ``qkd submit`` and ``qkd collect``: trained
students on simulated devices and on IBM hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, error_line, fail
from .options import (BACKEND_HELP, MAX_SAMPLES_HELP, STUDENTS_HELP, address_option, check_executor_options,
                      chunk_size_option, close_executor, executor_option, names, set_threads, threads_option,
                      workers_option)


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
             backend: str = typer.Option(..., "--backend", help=BACKEND_HELP),
             out: Path = typer.Option(..., "--out", help="Output directory; an existing one is resumed."),
             students: Optional[str] = typer.Option(None, "--students", help=STUDENTS_HELP),
             max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=MAX_SAMPLES_HELP),
             progress: bool = typer.Option(True, help="Show progress bars."),
             threads: int = threads_option(),
             executor: str = executor_option(), address: Optional[str] = address_option(),
             chunk_size: Optional[int] = chunk_size_option(), workers: Optional[int] = workers_option()) -> None:
    """Evaluate every trained quantum student of RUN_DIR on a backend: exact vs backend macro-F1."""
    set_threads(threads)
    ex = check_executor_options(executor, address, chunk_size, workers, threads, training=False)
    from ..backends import redact
    from ..evaluate import evaluate_run, format_summary
    from ..summaries import backend_summary

    try:
        rows = evaluate_run(run_dir, backend, out, progress=progress, students=names(students),
                            max_samples=max_samples, log=typer.echo, executor=ex, address=address,
                            chunk_size=chunk_size)
    except (ValueError, OSError) as err:
        fail(redact(error_line(err)))
    finally:
        close_executor(ex)
    typer.echo(format_summary(backend_summary(rows)))
    typer.echo(f"wrote {out / 'results.csv'} ({len(rows)} rows), summary.csv, manifest.json")


@app.command()
def calibrate(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
              backend: str = typer.Option(..., "--backend", help=BACKEND_HELP),
              samples: int = typer.Option(300, "--samples", min=2, help="Training-split circuits per unit."),
              val_samples: int = typer.Option(150, "--val-samples", min=2,
                                              help="Validation-split circuits per unit (choose regularisation)."),
              students: Optional[str] = typer.Option(None, "--students", help=STUDENTS_HELP),
              progress: bool = typer.Option(True, help="Show progress bars."),
              threads: int = threads_option(),
              executor: str = executor_option(), address: Optional[str] = address_option(),
              chunk_size: Optional[int] = chunk_size_option(), workers: Optional[int] = workers_option(),
              dry_run: bool = typer.Option(False, "--dry-run", help="ibm profiles: print the calibration jobs, "
                                           "circuits, shots and a QPU-time estimate; submit nothing."),
              wait: bool = typer.Option(False, "--wait", help="ibm profiles: wait for the calibration jobs "
                                        "(always on in local testing mode)."),
              resubmit_failed: bool = typer.Option(False, "--resubmit-failed", help="ibm profiles: resubmit "
                                                   "failed or cancelled calibration jobs.")) -> None:
    """Refit each quantum student's head on its noisy read-outs of training samples on a backend.

    On an ibm profile the calibration circuits are jobs in the crash-safe job ledger
    (RUN_DIR/jobs/<profile>/jobs.json): run the command again to collect them."""
    set_threads(threads)
    ex = check_executor_options(executor, address, chunk_size, workers, threads, training=False)
    from ..backends import load_profile, redact
    from ..calibrate import calibrate_run

    try:
        kind = load_profile(backend).kind
        if kind == "ibm":
            from ..jobs.calibration import calibrate_on_device, calibration_dry_run

            if dry_run:
                calibration_dry_run(run_dir, backend, samples, val_samples, names(students), log=typer.echo)
                return
            rows = calibrate_on_device(run_dir, backend, samples, val_samples, names(students), wait=wait,
                                       resubmit_failed=resubmit_failed, log=typer.echo)
        elif dry_run or wait or resubmit_failed:
            fail("--dry-run, --wait and --resubmit-failed apply to ibm profiles (device jobs)")
        else:
            rows = calibrate_run(run_dir, backend, samples, val_samples, students=names(students),
                                 progress=progress, log=typer.echo, executor=ex, address=address,
                                 chunk_size=chunk_size)
    except ValueError as err:
        fail(redact(str(err)))
    finally:
        close_executor(ex)
    typer.echo(f"wrote {run_dir}/calibration/<profile>/results.csv ({len(rows)} rows); "
               f"`qkd evaluate {run_dir} --backend {backend} --out DIR` now adds calibrated scores")


@app.command()
def noise(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
          backends: str = typer.Option("aer-fake-kingston,aer-fake-sherbrooke", "--backends",
                                       help="Comma-separated aer profiles (shipped names or files)."),
          shots: str = typer.Option("1024,8192", "--shots", help="Comma-separated shot counts."),
          samples: int = typer.Option(300, "--samples", min=2, help="Calibration circuits per unit (training split)."),
          val_samples: int = typer.Option(150, "--val-samples", min=2, help="Validation circuits per unit."),
          students: Optional[str] = typer.Option(None, "--students", help=STUDENTS_HELP),
          max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=MAX_SAMPLES_HELP),
          mitigation: str = typer.Option("none", "--mitigation", help="Comma-separated read-out mitigations "
                                         "to compare: none, mthree."),
          progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Noise study: every quantum student on device profiles x shots x read-out mitigation, raw and
    calibrated (RUN_DIR/noise/)."""
    from ..noise_study import noise_study

    try:
        counts = [int(s) for s in shots.split(",") if s.strip()]
    except ValueError:
        fail(f"--shots: expected comma-separated integers, got {shots!r}")
    if not counts or min(counts) < 1:
        fail(f"--shots: expected positive shot counts, got {shots!r}")
    try:
        noise_study(run_dir, names(backends) or [], counts, samples, val_samples, students=names(students),
                    max_samples=max_samples, progress=progress, log=typer.echo,
                    mitigations=names(mitigation) or ["none"])
    except ValueError as err:
        fail(str(err))
    typer.echo((run_dir / "noise" / "noise_study.md").read_text())
    typer.echo(f"wrote {run_dir}/noise/noise_study.csv, noise_study.md, noise_study.png")


@app.command()
def submit(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
           backend: str = typer.Option(..., "--backend", help=BACKEND_HELP + " Must be kind: ibm."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Print circuits, shots, depth, 2q gates and "
                                        "a QPU-time estimate; submit nothing."),
           resubmit_failed: bool = typer.Option(False, "--resubmit-failed", help="Also resubmit failed, "
                                                "cancelled and lost jobs."),
           wait: bool = typer.Option(False, "--wait", help="Wait for results (always on in local testing mode)."),
           students: Optional[str] = typer.Option(None, "--students", help=STUDENTS_HELP),
           max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=MAX_SAMPLES_HELP)
           ) -> None:
    """Submit one IBM Runtime job per trained quantum unit; job ids go to RUN_DIR/jobs/<profile>/jobs.json."""
    from ..backends import redact
    from ..jobs import dry_run as plan, submit_jobs

    try:
        if dry_run:
            plan(run_dir, backend, log=typer.echo, students=names(students), max_samples=max_samples)
        else:
            submit_jobs(run_dir, backend, resubmit_failed=resubmit_failed, wait=wait, log=typer.echo,
                        students=names(students), max_samples=max_samples)
    except Exception as err:  # noqa: BLE001 - one redacted line, whatever failed (service, network, profile)
        fail(redact(str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}").splitlines()[0])


@app.command()
def collect(run_dir: Path = typer.Argument(..., help="A run directory with submitted jobs."),
            backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " Default: the only "
                                                  "profile with jobs in RUN_DIR."),
            wait: bool = typer.Option(False, "--wait", help="Block until pending jobs finish.")) -> None:
    """Fetch job results by id (resumes after a crash), write exact vs device metrics; exit 1 on failures."""
    from ..backends import redact
    from ..evaluate import format_summary
    from ..jobs import collect_jobs, format_report
    from ..summaries import backend_summary

    try:
        rows, report = collect_jobs(run_dir, backend, wait=wait, log=typer.echo)
    except Exception as err:  # noqa: BLE001 - one redacted line
        fail(redact(str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}").splitlines()[0])
    if rows:
        typer.echo(format_summary(backend_summary(rows)))
    typer.echo(format_report(report))
    if any(report.get(s) for s in ("failed", "cancelled", "lost")):
        raise typer.Exit(1)
