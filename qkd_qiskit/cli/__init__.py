"""The ``qkd`` command line. Each command validates its inputs, then calls one library function.

Modules: :mod:`.app` (the application, one-line errors, ``--version``), :mod:`.options` (options
shared by several commands and their checks), and the commands by topic: :mod:`.training` (``run``,
``reproduce``, ``report``), :mod:`.device` (``evaluate``, ``calibrate``, ``noise``, ``submit``,
``collect``), :mod:`.catalog` (``circuits``, ``configs``, ``backends``, ``bench``).

Example:
    >>> sorted(c.callback.__name__ for c in app.registered_commands)[:4]
    ['backends', 'bench', 'calibrate', 'circuits']
"""

from __future__ import annotations

from . import catalog, device, training  # noqa: F401 - importing a command module registers its commands
from .app import app, fail, main

__all__ = ["app", "fail", "main"]
