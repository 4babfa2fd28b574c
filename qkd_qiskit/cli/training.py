"""``qkd run``, ``qkd reproduce`` and ``qkd report``: train a config, a sweep or a paper's study, and
summarise a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, error_line, fail
from .options import (address_option, check_executor_options, chunk_size_option, close_executor, executor_option,
                      set_threads, threads_option, workers_option)


@app.command()
def run(config: Path = typer.Argument(..., help="Experiment config (YAML), or the name of a shipped one "
                                      "(`qkd configs`)."),
        out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        threads: int = threads_option(),
        executor: str = executor_option(), address: Optional[str] = address_option(),
        chunk_size: Optional[int] = chunk_size_option(), workers: Optional[int] = workers_option()) -> None:
    """Train every (model, kd, seed) of CONFIG into OUT, skipping units already finished there."""
    set_threads(threads)
    ex = check_executor_options(executor, address, chunk_size, workers, threads)
    from ..config import ConfigError, load_config
    from ..experiments import run_experiment
    from ..studies import resolve_config_path

    from ..sweep import load_sweep

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
        fail(error_line(err))
    finally:
        close_executor(ex)
    typer.echo(summary_lines(rows))
    typer.echo(f"{out / 'results.csv'}: {len(rows)} rows")
    typer.echo(f"next: qkd report {out}   (summary.csv, summary.md with paired KD tests, figure1.png)")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished or partial run directory.")) -> None:
    """Write summary.csv, summary.md (paired KD tests) and figure1.png into RUN_DIR."""
    from ..report import write_report

    try:
        out = write_report(run_dir)
    except (ValueError, OSError) as err:
        fail(error_line(err))
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
              threads: int = threads_option(),
              executor: str = executor_option(), address: Optional[str] = address_option(),
              chunk_size: Optional[int] = chunk_size_option(), workers: Optional[int] = workers_option()) -> None:
    """Run a paper's study end to end and write its report (see README, 'Reproducing the paper')."""
    set_threads(threads)
    ex = check_executor_options(executor, address, chunk_size, workers, threads)
    from ..experiments import run_experiment
    from ..report import write_report
    from ..studies import STUDIES, SWEEP_STUDIES, study_config

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
        fail(error_line(err))
    finally:
        close_executor(ex)
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"wrote {out}/results.csv ({len(rows)} rows), summary.csv, summary.md, figure1.png")
    if study == "hasan2023":
        from ..report import write_hasan_report

        info = write_hasan_report(out)
        typer.echo((out / "hasan_summary.md").read_text())
        typer.echo(f"wrote {out}/hasan_summary.csv, hasan_summary.md, hasan_{info['dataset']}.png")


def _reproduce_robustness(out: Path, quick: bool, dataset: Optional[str], progress: bool, **run_options) -> None:
    """``qkd reproduce robustness``: train, calibrate and evaluate on both devices, then the report
    (robustness.md/.csv/.png; README, 'Robustness study')."""
    from ..robustness import run_robustness
    from ..studies import study_config

    try:
        info = run_robustness(study_config("robustness", quick, dataset), out, progress=progress, log=typer.echo,
                              **run_options)
    except (ValueError, OSError) as err:
        fail(error_line(err))
    finally:
        close_executor(run_options.get("executor"))
    typer.echo((out / "robustness.md").read_text())
    typer.echo(f"wrote {out}/robustness.csv ({len(info['cells'])} cells), robustness.md, robustness.png")


def _reproduce_sweep(study: str, out: Path, quick: bool, dataset: Optional[str], progress: bool,
                     **run_options) -> None:
    """``qkd reproduce kd-regimes``: the study's sweep, then its report (kd_regimes.md/.csv/.png)."""
    from ..kd_regimes import write_kd_regimes_report
    from ..studies import study_sweep

    if dataset is not None:
        fail(f"--dataset: study {study} has one dataset (xor)")
    try:
        sweep = study_sweep(study, quick)
    except ValueError as err:
        fail(error_line(err))
    _run_sweep(sweep, out, progress, **run_options)
    try:
        info = write_kd_regimes_report(out)
    except (ValueError, OSError) as err:
        fail(error_line(err))
    typer.echo((out / "kd_regimes.md").read_text())
    typer.echo(f"wrote {out}/kd_regimes.csv ({len(info['cells'])} cells), kd_regimes.md, kd_regimes.png")


def _run_sweep(sweep, out: Path, progress: bool, **run_options) -> list[dict]:  # noqa: ANN001
    """``qkd run`` of a config with a ``sweep:`` section: every grid point into OUT/points/<point>/."""
    from ..sweep import run_sweep

    try:
        rows = run_sweep(sweep, out, progress=progress, log=typer.echo, **run_options)
    except (ValueError, OSError) as err:
        fail(error_line(err))
    finally:
        close_executor(run_options.get("executor", "local"))
    typer.echo(f"{out / 'results.csv'}: {len(rows)} rows from {len(sweep.points)} points "
               f"(columns point, {', '.join(sweep.grid)}, then those of a run)")
    typer.echo(f"next: qkd report {out}/points/<point>   (one point's summary, paired KD tests, figure)")
    return rows


def summary_lines(rows: list[dict]) -> str:
    """Mean and std of test macro-F1 per (model, kd), as a small text table."""
    from ..summaries import group_rows, mean, sample_std

    lines = [f"{'model':<14}{'kd':<6}{'seeds':>6}{'mean_f1':>10}{'std_f1':>9}"]
    for (model, kd), rs in group_rows(rows, ("model", "kd")).items():
        f1 = [r["f1_macro"] for r in rs]
        lines.append(f"{model:<14}{str(kd):<6}{len(f1):>6}{mean(rs, 'f1_macro'):>10.4f}{sample_std(f1):>9.4f}")
    return "\n".join(lines)
