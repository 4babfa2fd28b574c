"""Strict validated files: the pydantic base, the one-line error and the YAML loader shared by
experiment configs and backend profiles.

Example:
    >>> class Point(Strict):
    ...     x: int
    >>> try:
    ...     validate(Point, {"x": 1, "y": 2}, "p.yaml", ValueError)
    ... except ValueError as err:
    ...     print(err)
    p.yaml: y: unknown key
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError


class Strict(BaseModel):
    """Frozen, strict (no coercion), unknown keys are errors, and so are infinite or NaN floats
    (YAML's ``.inf`` / ``.nan``: a learning rate of inf would train NaN models without a word)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def one_line(err: ValidationError, root: str = "config", drop_tags: tuple[str, ...] = (),
             refine: Callable[[dict, list[str], str], tuple[list[str], str]] | None = None) -> str:
    """First error as ``field.path: message (+N more)``.

    ``drop_tags``: leading location parts to drop (a discriminated union's tag); ``refine(error,
    loc, msg) -> (loc, msg)`` lets a caller reword one kind of error.
    """
    e = err.errors(include_url=False, include_input=False)[0]
    loc = [str(p) for p in e["loc"]]
    if loc and loc[0] in drop_tags:
        loc = loc[1:]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    if refine is not None:
        loc, msg = refine(e, loc, msg)
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{'.'.join(loc) or root}: {msg}{more}"


def validate(schema: Any, raw: Any, source: str, error: type[Exception], *, root: str = "config",
             what: str = "a mapping of keys", **line_options: Any) -> Any:
    """Validate ``raw`` (a mapping) against a model class or a ``TypeAdapter``; raise ``error``
    with one line ``source: field: message``."""
    if raw is None:
        raise error(f"{source}: empty (expected {what})")
    if not isinstance(raw, dict):
        raise error(f"{source}: top level must be {what}, got {type(raw).__name__}")
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(raw)
        return schema.model_validate(raw)
    except ValidationError as err:
        raise error(f"{source}: {one_line(err, root, **line_options)}") from None


def read_json(path: Path, error: type[Exception], hint: str = "") -> dict:
    """Parse a JSON file that must hold an object, turning a missing, unreadable, truncated or
    foreign file into one line naming it (``hint``: what to do about it, appended).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
        >>> _ = p.write_text('{"a": ')
        >>> try:
        ...     read_json(p, ValueError)
        ... except ValueError as err:
        ...     print(str(err).split(": ", 1)[1])
        damaged JSON (Expecting value: line 1 column 7)
    """
    hint = f"; {hint}" if hint else ""
    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise error(f"{path}: missing{hint}") from None
    except OSError as err:
        raise error(f"{path}: unreadable ({err.strerror or type(err).__name__}){hint}") from None
    except json.JSONDecodeError as err:
        raise error(f"{path}: damaged JSON ({err.msg}: line {err.lineno} column {err.colno}){hint}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: damaged JSON (not UTF-8 text){hint}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}{hint}")
    return data


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """Parse a YAML file, turning a syntax error into one line naming the file."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise error(f"{path}: unreadable ({err.strerror or type(err).__name__})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (expected YAML)") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
