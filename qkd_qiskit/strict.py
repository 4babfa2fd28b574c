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

from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError


class Strict(BaseModel):
    """Frozen, strict (no coercion), and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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
    if not isinstance(raw, dict):
        raise error(f"{source}: top level must be {what}, got {type(raw).__name__}")
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(raw)
        return schema.model_validate(raw)
    except ValidationError as err:
        raise error(f"{source}: {one_line(err, root, **line_options)}") from None


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """Parse a YAML file, turning a syntax error into one line naming the file."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise error(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
