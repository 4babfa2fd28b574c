"""Figures as files: a headless pyplot, and a figure's PNG bytes (written atomically by the caller).

The one home of "how a report draws": every figure of the package (run report, evaluation,
noise study, KD regimes, robustness) is drawn with :func:`pyplot` (matplotlib's file-only ``Agg``
backend, so no display is needed) and turned into bytes with :func:`png_bytes`, which closes it.

Example:
    >>> plt = pyplot()
    >>> fig, ax = plt.subplots(figsize=(2, 1))
    >>> png_bytes(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n", plt.fignum_exists(fig.number)
    (True, False)
"""

from __future__ import annotations

import io
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless ``Agg`` backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any, dpi: int = 120) -> bytes:
    """The figure as PNG bytes; the figure is closed (its memory freed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return buf.getvalue()
