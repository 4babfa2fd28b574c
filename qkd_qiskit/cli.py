"""The ``qkd`` command line. Each command validates its inputs, then calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Classical-to-quantum knowledge distillation with Qiskit students.")


@app.callback()
def _root() -> None:
    """Classical-to-quantum knowledge distillation with Qiskit students."""


def fail(message: str) -> None:
    """One-line error on stderr and exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def run(config: Path = typer.Argument(..., help="Experiment config (YAML)."),
        out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
        progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Train every (model, kd, seed) of CONFIG into OUT, skipping units already finished there."""
    from .config import ConfigError, load_config
    from .experiments import run_experiment

    try:
        cfg = load_config(config)
    except ConfigError as err:
        fail(str(err))
    try:
        rows = run_experiment(cfg, out, progress=progress)
    except ValueError as err:
        fail(str(err))
    typer.echo(_summary_lines(rows))
    typer.echo(f"wrote {out / 'results.csv'} ({len(rows)} rows)")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished or partial run directory.")) -> None:
    """Write summary.csv, summary.md (paired KD tests) and figure1.png into RUN_DIR."""
    from .report import write_report

    try:
        out = write_report(run_dir)
    except ValueError as err:
        fail(str(err))
    typer.echo((run_dir / "summary.md").read_text())
    if out["missing"]:
        typer.echo(f"partial run: {len(out['missing'])} unit(s) missing", err=True)


@app.command()
def reproduce(study: str = typer.Argument(..., help="Study to reproduce: piperno2024."),
              out: Path = typer.Option(..., "--out", help="Run directory; an existing one is resumed."),
              quick: bool = typer.Option(False, "--quick", help="3 seeds, few epochs: a smoke run in seconds."),
              progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Run a paper's study end to end and write its report (see README, 'Reproducing the paper')."""
    from .experiments import STUDIES, study_config
    from .report import write_report

    if study not in STUDIES:
        fail(f"STUDY: unknown study {study!r} (known: {', '.join(STUDIES)})")
    from .experiments import run_experiment

    rows = run_experiment(study_config(study, quick), out, progress=progress)
    write_report(out)
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"wrote {out}/results.csv ({len(rows)} rows), summary.csv, summary.md, figure1.png")


@app.command()
def circuits(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
             draw: Optional[str] = typer.Option(None, "--draw", help="Draw one architecture (e.g. q2)."),
             out: Optional[Path] = typer.Option(None, "--out", help="PNG file for --draw (else text)."),
             qubits: int = typer.Option(6, min=2, help="Qubits of every student."),
             layers: int = typer.Option(5, min=1, help="Ansatz layers."),
             classes: int = typer.Option(3, min=2, help="Classes the head outputs.")) -> None:
    """Parameter accounting of every student architecture, with gate counts on fake IBM devices."""
    from .circuit_report import architecture_table, draw_student, format_table
    from .circuits import ARCHITECTURES

    if draw is not None:
        if draw not in ARCHITECTURES:
            fail(f"--draw: unknown architecture {draw!r} (known: {', '.join(ARCHITECTURES)})")
        result = draw_student(draw, str(out) if out else None, qubits, layers)
        typer.echo(f"wrote {result}" if out else result)
        return
    try:
        rows = architecture_table(qubits, layers, classes)
    except ValueError as err:
        fail(str(err))
    typer.echo(json.dumps(rows, indent=2) if as_json else format_table(rows))


def _summary_lines(rows: list[dict]) -> str:
    """Mean and std of test macro-F1 per (model, kd), as a small text table."""
    import numpy as np

    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["kd"]), []).append(r["f1_macro"])
    lines = [f"{'model':<14}{'kd':<6}{'seeds':>6}{'mean_f1':>10}{'std_f1':>9}"]
    for (model, kd), f1 in groups.items():
        lines.append(f"{model:<14}{str(kd):<6}{len(f1):>6}{np.mean(f1):>10.4f}{np.std(f1, ddof=1) if len(f1) > 1 else 0:>9.4f}")
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - console entry for `python -m qkd_qiskit`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
