"""Model options of a config entry, checked by the builders: a wrong type or value is one line
naming ``options.<key>`` (``experiments.preflight`` adds the entry, ``students.<i>.``), never a
torch or numpy error from deep inside a constructor.

Example:
    >>> opts = {"qubits": "six"}
    >>> try:
    ...     take_int(opts, "qubits", 6)
    ... except ValueError as err:
    ...     print(err)
    options.qubits: must be an integer >= 1, got 'six'
    >>> take_sizes({"hidden": [16, 8]}, "hidden", []), take_choice({}, "gradient", "auto", ("auto", "spsa"))
    ([16, 8], 'auto')
"""

from __future__ import annotations

from typing import Any, Sequence


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def take_int(options: dict, key: str, default: int | None, minimum: int = 1) -> int | None:
    """Pop ``key`` (default ``default``): an integer >= ``minimum`` (``None`` only as the default)."""
    v = options.pop(key, default)
    if v is None and default is None:
        return None
    if not _is_int(v) or v < minimum:
        raise ValueError(f"options.{key}: must be an integer >= {minimum}, got {v!r}")
    return v


def take_sizes(options: dict, key: str, default: Sequence[int], length: int | None = None) -> list[int]:
    """Pop ``key``: a list of positive integers (layer widths; exactly ``length`` of them if given)."""
    v = options.pop(key, list(default))
    if not isinstance(v, (list, tuple)) or not all(_is_int(s) and s >= 1 for s in v) \
            or (length is not None and len(v) != length):
        what = f"{length} positive integers" if length is not None else "a list of positive integers"
        raise ValueError(f"options.{key}: must be {what}, got {v!r}")
    return list(v)


def take_choice(options: dict, key: str, default: str, choices: Sequence[str]) -> str:
    """Pop ``key``: one of ``choices``."""
    v = options.pop(key, default)
    if not isinstance(v, str) or v not in choices:
        listed = f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]
        raise ValueError(f"options.{key}: must be {listed}, got {v!r}")
    return v


def take_name(options: dict, key: str) -> str | None:
    """Pop ``key``: a non-empty string (a profile name or path), or absent."""
    v = options.pop(key, None)
    if v is not None and (not isinstance(v, str) or not v):
        raise ValueError(f"options.{key}: must be a profile name or file, got {v!r}")
    return v
