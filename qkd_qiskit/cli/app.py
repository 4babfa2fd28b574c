"""The ``qkd`` Typer application: one-line usage errors, ``--version``, :func:`fail` (every error of
every command is one line on stderr and exit code 2) and :func:`main`."""

from __future__ import annotations

import sys

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
        from ..shipped import package_version

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


def error_line(err: Exception) -> str:
    """One line for a library error (ValueError) or a file-system one (disk full, permission)."""
    if isinstance(err, OSError):
        return f"{err.filename}: {err.strerror or err}" if err.filename else f"{err.strerror or err}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def main() -> None:  # pragma: no cover - console entry for `python -m qkd_qiskit.cli`
    app(prog_name="qkd")  # messages and --help name the command as users type it
