"""The ``qkd`` command line. Each command validates its inputs, then calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (a missing or unknown option, a value out of range, a wrong type) as one line
    ``error: ... (qkd CMD --help)`` and exit code 2, like every other error of the command, instead
    of a usage box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as err:  # the CLI library's usage errors: duck-typed, its classes are not public
            if not (hasattr(err, "format_message") and hasattr(err, "exit_code") and hasattr(err, "show")):
                raise
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `qkd`: the help text
                err.show()
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)
            hint = f" ({ctx.command_path} --help)" if ctx is not None else ""
            message = " ".join(str(err.format_message()).split()).rstrip(".")
            typer.echo(f"error: {message}{hint}", err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,  # plain help: no <bool>
                  cls=_OneLineUsageErrors, help="Classical-to-quantum knowledge distillation with Qiskit students.")


def _print_version(value: bool) -> None:
    if value:
        from .shipped import package_version

        typer.echo(f"qkd-qiskit {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the installed qkd-qiskit version and exit.")) -> None:
    """Classical-to-quantum knowledge distillation with Qiskit students."""


def fail(message: str) -> None:
    """One-line error on stderr and exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _message(err: Exception) -> str:
    """One line for a library error (ValueError) or a file-system one (disk full, permission)."""
    if isinstance(err, OSError):
        return f"{err.filename}: {err.strerror or err}" if err.filename else f"{err.strerror or err}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


_THREADS_HELP = ("torch threads of this process and of each --workers process (0 = torch's default, one per "
                 "core). 1 is fastest for these small tensors and does not collapse when other processes share the "
                 "cores (README, 'Thread policy').")


def _threads_option() -> object:
    from .threads import DEFAULT_THREADS

    return typer.Option(DEFAULT_THREADS, "--threads", min=0, help=_THREADS_HELP)


def _set_threads(threads: int) -> None:
    """Apply ``--threads`` at command start (:func:`qkd_qiskit.threads.apply_threads`)."""
    from .threads import apply_threads

    apply_threads(threads)


def _executor_option() -> object:
    return typer.Option("local", "--executor", help="Where the work runs: local (this process) or ray (a Ray "
                        "cluster; pip install \"qkd-qiskit[ray]\"). Results are the same (README, 'Running on a "
                        "Ray cluster').")


def _address_option() -> object:
    return typer.Option(None, "--address", help="--executor ray: the cluster's address, or auto (default: RAY_ADDRESS, "
                        "else a cluster started here, else a local Ray instance on this machine's cores).")


def _chunk_size_option() -> object:
    return typer.Option(None, "--chunk-size", min=1, help="Units per task, batched together (default: all units "
                        "of one model). A started run keeps its chunk size.")


def _workers_option() -> object:
    return typer.Option(None, "--workers", help="--executor local: worker processes training (or evaluating) "
                        "independent groups at once, each with --threads torch threads (default 1: in this "
                        "process). Results are bit for bit the same (README, 'Thread policy').")


def _check_executor(executor: str, address: str | None, chunk_size: int | None, workers: int | None = None,
                    threads: int | None = None, training: bool = True):  # noqa: ANN202 - object or name
    """``--executor`` / ``--address`` / ``--chunk-size`` / ``--workers`` as one line and exit 2,
    before any work. Returns what the library call takes as ``executor``: the local executor object
    (for ``training`` commands with ``--workers`` > 1 the first worker starts now, importing the
    training code in the background while the teacher trains here; :func:`_close` ends them), or
    the name ``ray`` (started by the library after its own checks)."""
    from .executors import check_executor, make_executor
    from .threads import DEFAULT_THREADS

    try:
        check_executor(executor, address, chunk_size, workers)
    except ValueError as err:
        fail(str(err))
    if executor != "local":
        return executor
    return make_executor(executor, address, chunk_size, workers, DEFAULT_THREADS if threads is None else threads,
                         preload=[f"{__package__}.experiments"] if training else ())


def _close(executor) -> None:  # noqa: ANN001
    """End the local executor's worker processes (a name: nothing was made here)."""
    if not isinstance(executor, str):
        executor.close()


@app.command()
def run(config: Path = typer.Argument(..., help="Experiment config (YAML), or the name of a shipped one "
                                      "(`qkd configs`)."),
        out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        threads: int = _threads_option(),
        executor: str = _executor_option(), address: Optional[str] = _address_option(),
        chunk_size: Optional[int] = _chunk_size_option(), workers: Optional[int] = _workers_option()) -> None:
    """Train every (model, kd, seed) of CONFIG into OUT, skipping units already finished there."""
    _set_threads(threads)
    ex = _check_executor(executor, address, chunk_size, workers, threads)
    from .config import ConfigError, load_config
    from .experiments import run_experiment
    from .studies import resolve_config_path

    from .sweep import load_sweep

    try:
        sweep = load_sweep(resolve_config_path(config))  # None: no `sweep:` section
        cfg = load_config(resolve_config_path(config)) if sweep is None else None
    except ConfigError as err:
        fail(str(err))
    if sweep is not None:
        return _run_sweep(sweep, out, progress, executor=ex, address=address, chunk_size=chunk_size)
    try:
        rows = run_experiment(cfg, out, progress=progress, log=typer.echo, executor=ex, address=address,
                              chunk_size=chunk_size)
    except (ValueError, OSError) as err:
        fail(_message(err))
    finally:
        _close(ex)
    typer.echo(_summary_lines(rows))
    typer.echo(f"{out / 'results.csv'}: {len(rows)} rows")
    typer.echo(f"next: qkd report {out}   (summary.csv, summary.md with paired KD tests, figure1.png)")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished or partial run directory.")) -> None:
    """Write summary.csv, summary.md (paired KD tests) and figure1.png into RUN_DIR."""
    from .report import write_report

    try:
        out = write_report(run_dir)
    except (ValueError, OSError) as err:
        fail(_message(err))
    typer.echo((run_dir / "summary.md").read_text())
    if out["missing"]:
        typer.echo(f"partial run: {len(out['missing'])} unit(s) missing", err=True)


@app.command()
def reproduce(study: str = typer.Argument(..., help="Study to reproduce: piperno2024, hasan2023, kd-regimes, robustness."),
              out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
              quick: bool = typer.Option(False, "--quick", help="3 seeds, few epochs: a smoke run in seconds."),
              dataset: Optional[str] = typer.Option(None, "--dataset", help="hasan2023: digits (default, "
                                                    "offline), mnist, fashion_mnist or cifar10; robustness: xor "
                                                    "(default) or digits."),
              progress: bool = typer.Option(True, help="Show progress bars."),
              threads: int = _threads_option(),
              executor: str = _executor_option(), address: Optional[str] = _address_option(),
              chunk_size: Optional[int] = _chunk_size_option(), workers: Optional[int] = _workers_option()) -> None:
    """Run a paper's study end to end and write its report (see README, 'Reproducing the paper')."""
    _set_threads(threads)
    ex = _check_executor(executor, address, chunk_size, workers, threads)
    from .experiments import run_experiment
    from .report import write_report
    from .studies import STUDIES, SWEEP_STUDIES, study_config

    if study not in STUDIES and study not in SWEEP_STUDIES:
        fail(f"STUDY: unknown study {study!r} (known: {', '.join([*STUDIES, *SWEEP_STUDIES])})")
    if study in SWEEP_STUDIES:
        return _reproduce_sweep(study, out, quick, dataset, progress, executor=ex, address=address,
                                chunk_size=chunk_size)
    if study == "robustness":
        return _reproduce_robustness(out, quick, dataset, progress, executor=ex, address=address,
                                     chunk_size=chunk_size)

    try:
        rows = run_experiment(study_config(study, quick, dataset), out, progress=progress, log=typer.echo,
                              executor=ex, address=address, chunk_size=chunk_size)
        write_report(out)
    except (ValueError, OSError) as err:
        fail(_message(err))
    finally:
        _close(ex)
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"wrote {out}/results.csv ({len(rows)} rows), summary.csv, summary.md, figure1.png")
    if study == "hasan2023":
        from .report import write_hasan_report

        info = write_hasan_report(out)
        typer.echo((out / "hasan_summary.md").read_text())
        typer.echo(f"wrote {out}/hasan_summary.csv, hasan_summary.md, hasan_{info['dataset']}.png")


@app.command()
def circuits(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
             draw: Optional[str] = typer.Option(None, "--draw", help="Draw one architecture (e.g. q2)."),
             out: Optional[Path] = typer.Option(None, "--out", help="PNG file for --draw (else text)."),
             qubits: int = typer.Option(6, min=2, help="Qubits of every student."),
             layers: int = typer.Option(5, min=1, help="Ansatz layers."),
             classes: int = typer.Option(3, min=2, help="Classes the head outputs.")) -> None:
    """Parameter accounting of every student architecture, with gate counts on fake IBM devices."""
    from .circuit_report import architecture_table, draw_student, format_table, omitted_note
    from .circuits import ARCHITECTURES
    from .outdir import check_output_file

    if out is not None and draw is None:
        fail("--out: only used with --draw (the table goes to stdout)")
    if draw is not None:
        if draw not in ARCHITECTURES:
            fail(f"--draw: unknown architecture {draw!r} (known: {', '.join(ARCHITECTURES)})")
        try:
            if out is not None:
                check_output_file(out)
            result = draw_student(draw, str(out) if out else None, qubits, layers)
        except ValueError as err:
            fail(str(err) if str(err).startswith("--") else f"--draw: {err}")
        typer.echo(f"wrote {result}" if out else result)
        return
    try:
        rows = architecture_table(qubits, layers, classes)
    except ValueError as err:
        fail(str(err))
    typer.echo(json.dumps(rows, indent=2) if as_json else format_table(rows))
    note = omitted_note(qubits)
    if note:
        typer.echo(note, err=as_json)  # keeps --json output parseable


@app.command()
def configs(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table.")) -> None:
    """List the shipped experiment configs: dataset, teacher, students, seeds, and how to run each."""
    from .studies import config_table, format_config_table

    rows = config_table()
    typer.echo(json.dumps(rows, indent=2) if as_json else format_config_table(rows))


@app.command()
def backends(profile: Optional[str] = typer.Argument(None, help="Show one profile: a shipped name or a YAML file."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the shipped backend profiles with their device's qubits and median errors (or show one)."""
    from .backends import ProfileError
    from .backends.listing import format_profile, format_profile_table, profile_summary, profile_table

    try:
        rows = profile_table() if profile is None else [profile_summary(profile)]
    except ProfileError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(rows if profile is None else rows[0], indent=2))
    else:
        typer.echo(format_profile_table(rows) if profile is None else format_profile(rows[0]))


_BACKEND_HELP = "Backend profile: a YAML file or a shipped name (backends/<name>.yaml)."
_STUDENTS_HELP = "Comma-separated student entry names (default: every quantum student of the run)."
_MAX_SAMPLES_HELP = "Use a seeded, class-stratified subset of this many test samples (default: all)."


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
             backend: str = typer.Option(..., "--backend", help=_BACKEND_HELP),
             out: Path = typer.Option(..., "--out", help="Output directory; an existing one is resumed."),
             students: Optional[str] = typer.Option(None, "--students", help=_STUDENTS_HELP),
             max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=_MAX_SAMPLES_HELP),
             progress: bool = typer.Option(True, help="Show progress bars."),
             threads: int = _threads_option(),
             executor: str = _executor_option(), address: Optional[str] = _address_option(),
             chunk_size: Optional[int] = _chunk_size_option(), workers: Optional[int] = _workers_option()) -> None:
    """Evaluate every trained quantum student of RUN_DIR on a backend: exact vs backend macro-F1."""
    _set_threads(threads)
    ex = _check_executor(executor, address, chunk_size, workers, threads, training=False)
    from .backends import redact
    from .evaluate import evaluate_run, format_summary
    from .summaries import backend_summary

    try:
        rows = evaluate_run(run_dir, backend, out, progress=progress, students=_names(students),
                            max_samples=max_samples, log=typer.echo, executor=ex, address=address,
                            chunk_size=chunk_size)
    except (ValueError, OSError) as err:
        fail(redact(_message(err)))
    finally:
        _close(ex)
    typer.echo(format_summary(backend_summary(rows)))
    typer.echo(f"wrote {out / 'results.csv'} ({len(rows)} rows), summary.csv, manifest.json")


@app.command()
def calibrate(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
              backend: str = typer.Option(..., "--backend", help=_BACKEND_HELP),
              samples: int = typer.Option(300, "--samples", min=2, help="Training-split circuits per unit."),
              val_samples: int = typer.Option(150, "--val-samples", min=2,
                                              help="Validation-split circuits per unit (choose regularisation)."),
              students: Optional[str] = typer.Option(None, "--students", help=_STUDENTS_HELP),
              progress: bool = typer.Option(True, help="Show progress bars."),
              threads: int = _threads_option(),
              executor: str = _executor_option(), address: Optional[str] = _address_option(),
              chunk_size: Optional[int] = _chunk_size_option(), workers: Optional[int] = _workers_option(),
              dry_run: bool = typer.Option(False, "--dry-run", help="ibm profiles: print the calibration jobs, "
                                           "circuits, shots and a QPU-time estimate; submit nothing."),
              wait: bool = typer.Option(False, "--wait", help="ibm profiles: wait for the calibration jobs "
                                        "(always on in local testing mode)."),
              resubmit_failed: bool = typer.Option(False, "--resubmit-failed", help="ibm profiles: resubmit "
                                                   "failed or cancelled calibration jobs.")) -> None:
    """Refit each quantum student's head on its noisy read-outs of training samples on a backend.

    On an ibm profile the calibration circuits are jobs in the crash-safe job ledger
    (RUN_DIR/jobs/<profile>/jobs.json): run the command again to collect them."""
    _set_threads(threads)
    ex = _check_executor(executor, address, chunk_size, workers, threads, training=False)
    from .backends import load_profile, redact
    from .calibrate import calibrate_run

    try:
        kind = load_profile(backend).kind
        if kind == "ibm":
            from .jobs.calibration import calibrate_on_device, calibration_dry_run

            if dry_run:
                calibration_dry_run(run_dir, backend, samples, val_samples, _names(students), log=typer.echo)
                return
            rows = calibrate_on_device(run_dir, backend, samples, val_samples, _names(students), wait=wait,
                                       resubmit_failed=resubmit_failed, log=typer.echo)
        elif dry_run or wait or resubmit_failed:
            fail("--dry-run, --wait and --resubmit-failed apply to ibm profiles (device jobs)")
        else:
            rows = calibrate_run(run_dir, backend, samples, val_samples, students=_names(students),
                                 progress=progress, log=typer.echo, executor=ex, address=address,
                                 chunk_size=chunk_size)
    except ValueError as err:
        fail(redact(str(err)))
    finally:
        _close(ex)
    typer.echo(f"wrote {run_dir}/calibration/<profile>/results.csv ({len(rows)} rows); "
               f"`qkd evaluate {run_dir} --backend {backend} --out DIR` now adds calibrated scores")


@app.command()
def noise(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
          backends: str = typer.Option("aer-fake-kingston,aer-fake-sherbrooke", "--backends",
                                       help="Comma-separated aer profiles (shipped names or files)."),
          shots: str = typer.Option("1024,8192", "--shots", help="Comma-separated shot counts."),
          samples: int = typer.Option(300, "--samples", min=2, help="Calibration circuits per unit (training split)."),
          val_samples: int = typer.Option(150, "--val-samples", min=2, help="Validation circuits per unit."),
          students: Optional[str] = typer.Option(None, "--students", help=_STUDENTS_HELP),
          max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=_MAX_SAMPLES_HELP),
          mitigation: str = typer.Option("none", "--mitigation", help="Comma-separated read-out mitigations "
                                         "to compare: none, mthree."),
          progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Noise study: every quantum student on device profiles x shots x read-out mitigation, raw and
    calibrated (RUN_DIR/noise/)."""
    from .noise_study import noise_study

    try:
        counts = [int(s) for s in shots.split(",") if s.strip()]
    except ValueError:
        fail(f"--shots: expected comma-separated integers, got {shots!r}")
    if not counts or min(counts) < 1:
        fail(f"--shots: expected positive shot counts, got {shots!r}")
    try:
        noise_study(run_dir, _names(backends) or [], counts, samples, val_samples, students=_names(students),
                    max_samples=max_samples, progress=progress, log=typer.echo,
                    mitigations=_names(mitigation) or ["none"])
    except ValueError as err:
        fail(str(err))
    typer.echo((run_dir / "noise" / "noise_study.md").read_text())
    typer.echo(f"wrote {run_dir}/noise/noise_study.csv, noise_study.md, noise_study.png")


@app.command()
def submit(run_dir: Path = typer.Argument(..., help="A `qkd run` directory with trained quantum students."),
           backend: str = typer.Option(..., "--backend", help=_BACKEND_HELP + " Must be kind: ibm."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Print circuits, shots, depth, 2q gates and "
                                        "a QPU-time estimate; submit nothing."),
           resubmit_failed: bool = typer.Option(False, "--resubmit-failed", help="Also resubmit failed, "
                                                "cancelled and lost jobs."),
           wait: bool = typer.Option(False, "--wait", help="Wait for results (always on in local testing mode)."),
           students: Optional[str] = typer.Option(None, "--students", help=_STUDENTS_HELP),
           max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help=_MAX_SAMPLES_HELP)
           ) -> None:
    """Submit one IBM Runtime job per trained quantum unit; job ids go to RUN_DIR/jobs/<profile>/jobs.json."""
    from .backends import redact
    from .jobs import dry_run as plan, submit_jobs

    try:
        if dry_run:
            plan(run_dir, backend, log=typer.echo, students=_names(students), max_samples=max_samples)
        else:
            submit_jobs(run_dir, backend, resubmit_failed=resubmit_failed, wait=wait, log=typer.echo,
                        students=_names(students), max_samples=max_samples)
    except Exception as err:  # noqa: BLE001 - one redacted line, whatever failed (service, network, profile)
        fail(redact(str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}").splitlines()[0])


@app.command()
def collect(run_dir: Path = typer.Argument(..., help="A run directory with submitted jobs."),
            backend: Optional[str] = typer.Option(None, "--backend", help=_BACKEND_HELP + " Default: the only "
                                                  "profile with jobs in RUN_DIR."),
            wait: bool = typer.Option(False, "--wait", help="Block until pending jobs finish.")) -> None:
    """Fetch job results by id (resumes after a crash), write exact vs device metrics; exit 1 on failures."""
    from .backends import redact
    from .evaluate import format_summary
    from .jobs import collect_jobs, format_report
    from .summaries import backend_summary

    try:
        rows, report = collect_jobs(run_dir, backend, wait=wait, log=typer.echo)
    except Exception as err:  # noqa: BLE001 - one redacted line
        fail(redact(str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}").splitlines()[0])
    if rows:
        typer.echo(format_summary(backend_summary(rows)))
    typer.echo(format_report(report))
    if any(report.get(s) for s in ("failed", "cancelled", "lost")):
        raise typer.Exit(1)


@app.command()
def bench(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
          quick: bool = typer.Option(False, "--quick", help="Short measurements; scaling up to 10 qubits."),
          threads: int = typer.Option(1, min=1, help="torch intra-op threads for every path."),
          peers: bool = typer.Option(True, help="Also time the JAX-compiled peers (PennyLane + JAX, "
                                     "TensorCircuit-NG) when installed: pip install 'qkd-qiskit[bench]'.")) -> None:
    """Engine speed vs TorchConnector, stock qiskit-machine-learning, Aer, PennyLane, JAX peers (if installed)."""
    from .bench import run_bench

    run_bench(quick=quick, json=as_json, threads=threads, peers=peers)


def _reproduce_robustness(out: Path, quick: bool, dataset: Optional[str], progress: bool, **run_options) -> None:
    """``qkd reproduce robustness``: train, calibrate and evaluate on both devices, then the report
    (robustness.md/.csv/.png; README, 'Robustness study')."""
    from .robustness import run_robustness
    from .studies import study_config

    try:
        info = run_robustness(study_config("robustness", quick, dataset), out, progress=progress, log=typer.echo,
                              **run_options)
    except (ValueError, OSError) as err:
        fail(_message(err))
    finally:
        _close(run_options.get("executor"))
    typer.echo((out / "robustness.md").read_text())
    typer.echo(f"wrote {out}/robustness.csv ({len(info['cells'])} cells), robustness.md, robustness.png")


def _reproduce_sweep(study: str, out: Path, quick: bool, dataset: Optional[str], progress: bool,
                     **run_options) -> None:
    """``qkd reproduce kd-regimes``: the study's sweep, then its report (kd_regimes.md/.csv/.png)."""
    from .kd_regimes import write_kd_regimes_report
    from .studies import study_sweep

    if dataset is not None:
        fail(f"--dataset: study {study} has one dataset (xor)")
    try:
        sweep = study_sweep(study, quick)
    except ValueError as err:
        fail(_message(err))
    _run_sweep(sweep, out, progress, **run_options)
    try:
        info = write_kd_regimes_report(out)
    except (ValueError, OSError) as err:
        fail(_message(err))
    typer.echo((out / "kd_regimes.md").read_text())
    typer.echo(f"wrote {out}/kd_regimes.csv ({len(info['cells'])} cells), kd_regimes.md, kd_regimes.png")


def _run_sweep(sweep, out: Path, progress: bool, **run_options) -> list[dict]:  # noqa: ANN001
    """``qkd run`` of a config with a ``sweep:`` section: every grid point into OUT/points/<point>/."""
    from .sweep import run_sweep

    try:
        rows = run_sweep(sweep, out, progress=progress, log=typer.echo, **run_options)
    except (ValueError, OSError) as err:
        fail(_message(err))
    finally:
        _close(run_options.get("executor", "local"))
    typer.echo(f"{out / 'results.csv'}: {len(rows)} rows from {len(sweep.points)} points "
               f"(columns point, {', '.join(sweep.grid)}, then those of a run)")
    typer.echo(f"next: qkd report {out}/points/<point>   (one point's summary, paired KD tests, figure)")
    return rows


def _summary_lines(rows: list[dict]) -> str:
    """Mean and std of test macro-F1 per (model, kd), as a small text table."""
    from .summaries import group_rows, mean, sample_std

    lines = [f"{'model':<14}{'kd':<6}{'seeds':>6}{'mean_f1':>10}{'std_f1':>9}"]
    for (model, kd), rs in group_rows(rows, ("model", "kd")).items():
        f1 = [r["f1_macro"] for r in rs]
        lines.append(f"{model:<14}{str(kd):<6}{len(f1):>6}{mean(rs, 'f1_macro'):>10.4f}{sample_std(f1):>9.4f}")
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - console entry for `python -m qkd_qiskit`
    app(prog_name="qkd")  # messages and --help name the command as users type it


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
