"""Imported once by the fork server of the worker processes (:mod:`~qkd_qiskit.executors.pool`), so
that what every process pays on its first training is paid there, once, and not by each worker.

Importing this module imports torch and constructs one throw-away ``torch.optim.Adam``: torch's
first optimizer imports its compiler stack (``torch.optim`` wraps ``Optimizer.__init__`` in a
lazily imported dynamo guard: about 800 modules, sympy included, 2 s of CPU on the development
machine). No tensor operation runs, so no OpenMP thread pool exists to be copied by ``fork``.

Example:
    >>> import qkd_qiskit.executors.warmup as w
    >>> w.WARMED
    True
"""

from __future__ import annotations

import torch

torch.optim.Adam([torch.zeros(1, requires_grad=True)])
WARMED = True
"""Set once the warm-up above has run (what the example checks)."""
