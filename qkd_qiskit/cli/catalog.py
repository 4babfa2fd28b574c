"""``qkd circuits``, ``qkd configs``, ``qkd backends`` and ``qkd bench``: what the package ships and
how fast it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import app, fail


@app.command()
def circuits(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
             draw: Optional[str] = typer.Option(None, "--draw", help="Draw one architecture (e.g. q2)."),
             out: Optional[Path] = typer.Option(None, "--out", help="PNG file for --draw (else text)."),
             qubits: int = typer.Option(6, min=2, help="Qubits of every student."),
             layers: int = typer.Option(5, min=1, help="Ansatz layers."),
             classes: int = typer.Option(3, min=2, help="Classes the head outputs.")) -> None:
    """Parameter accounting of every student architecture, with gate counts on fake IBM devices."""
    from ..circuit_report import architecture_table, draw_student, format_table, omitted_note
    from ..circuits import ARCHITECTURES
    from ..outdir import check_output_file

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
    from ..studies import config_table, format_config_table

    rows = config_table()
    typer.echo(json.dumps(rows, indent=2) if as_json else format_config_table(rows))


@app.command()
def backends(profile: Optional[str] = typer.Argument(None, help="Show one profile: a shipped name or a YAML file."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the shipped backend profiles with their device's qubits and median errors (or show one)."""
    from ..backends import ProfileError
    from ..backends.listing import format_profile, format_profile_table, profile_summary, profile_table

    try:
        rows = profile_table() if profile is None else [profile_summary(profile)]
    except ProfileError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(rows if profile is None else rows[0], indent=2))
    else:
        typer.echo(format_profile_table(rows) if profile is None else format_profile(rows[0]))


@app.command()
def bench(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
          quick: bool = typer.Option(False, "--quick", help="Short measurements; scaling up to 10 qubits."),
          threads: int = typer.Option(1, min=1, help="torch intra-op threads for every path."),
          peers: bool = typer.Option(True, help="Also time the JAX-compiled peers (PennyLane + JAX, "
                                     "TensorCircuit-NG) when installed: pip install 'qkd-qiskit[bench]'.")) -> None:
    """Engine speed vs TorchConnector, stock qiskit-machine-learning, Aer, PennyLane, JAX peers (if installed)."""
    from ..bench import run_bench

    run_bench(quick=quick, json=as_json, threads=threads, peers=peers)
