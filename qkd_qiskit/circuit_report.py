"""Parameter accounting and drawings of the student circuits (backs ``qkd circuits``).

``total_params`` is the paper's count (every circuit weight plus the head); ``effective_params``
leaves out the *idle* weights, whose gates cannot change a Z-basis read-out (found from the
circuit: :func:`~qkd_qiskit.circuits.idle_weights`), e.g. q2's last RZZ.

Example:
    >>> rows = architecture_table(devices=())
    >>> [(r["name"], r["total_params"], r["effective_params"]) for r in rows][3]
    ('q2', 74, 73)
"""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit
from qiskit.exceptions import MissingOptionalLibraryError

from .backends.devices import preset_pass_manager
from .catalog import ARCHITECTURES
from .circuits import build_student, idle_weights

TRANSPILE_SEED = 1234
FAKE_DEVICES = ("fake_sherbrooke", "fake_torino")


def _logical(circuit: QuantumCircuit) -> QuantumCircuit:
    """The circuit with multiplexers expanded into RY + CX (all other gates as built)."""
    return circuit.decompose(gates_to_decompose=["mux_ry"])


def architecture_table(
    n_qubits: int = 6,
    layers: int = 5,
    n_classes: int = 3,
    devices: tuple[str, ...] = FAKE_DEVICES,
    names: tuple[str, ...] | None = None,
) -> list[dict]:
    """One row per architecture: parameter counts, and depth / two-qubit gates of the measured
    circuit, logically (``mux_ry`` expanded into RY + CX) and after transpiling to each fake device
    (optimization level 1, fixed seed). Keys: ``name, qubits, layers, weights, idle_weights, head_params,
    total_params, effective_params, depth, two_qubit_gates`` plus ``depth_<device>``,
    ``two_qubit_gates_<device>``.
    """
    if names is None:
        names = ARCHITECTURES if n_qubits == 6 else ("hea", "universal", "universal_h") + tuple(
            f"q{d}" for d in range(2, n_qubits)
        )
    rows = []
    for name in names:
        student = build_student(name, n_qubits, layers)
        measured = student.measured_circuit()
        logical = _logical(measured)
        head = student.head_params(n_classes)
        idle = len(idle_weights(student))
        row = {
            "name": name,
            "qubits": n_qubits,
            "layers": layers,
            "weights": len(student.weight_params),
            "idle_weights": idle,
            "head_params": head,
            "total_params": len(student.weight_params) + head,
            "effective_params": len(student.weight_params) - idle + head,
            "depth": logical.depth(),
            "two_qubit_gates": logical.num_nonlocal_gates(),
        }
        for device in devices:
            isa = preset_pass_manager(device, seed_transpiler=TRANSPILE_SEED).run(measured)
            row[f"depth_{device}"] = isa.depth()
            row[f"two_qubit_gates_{device}"] = isa.num_nonlocal_gates()
        rows.append(row)
    return rows


def omitted_note(n_qubits: int) -> str | None:
    """Why some q_nd architectures are missing from a table of ``n_qubits`` qubits (None if none are)."""
    missing = [f"q{d}" for d in range(max(2, n_qubits), 6)]
    if not missing:
        return None
    names = missing[0] if len(missing) == 1 else f"{missing[0]}..{missing[-1]}"
    return (f"{names} not shown: q<n_d> measures all but n_d of the qubits mid-circuit and reads out the "
            f"last n_d, so it needs n_d < qubits ({n_qubits})")


def format_table(rows: list[dict]) -> str:
    """Plain-text table of :func:`architecture_table` rows."""
    if not rows:
        return ""
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(str(r[k]).rjust(w) for k, w in zip(keys, widths)) for r in rows]
    return "\n".join(lines)


def draw_student(
    name: str, out_path: str | None = None, n_qubits: int = 6, layers: int = 5, fold: int | None = None
) -> str:
    """Draw a student circuit with Qiskit's drawer: a PNG ("mpl") when ``out_path`` is given
    (returns the path), otherwise the text drawing (returned as a string). ``fold`` is passed to
    the drawer (None: its default). Without ``pylatexenc`` (needed by the "mpl" drawer) the text
    drawing is rendered into the PNG instead."""
    circuit = build_student(name, n_qubits, layers).circuit
    if out_path is None:
        return str(circuit.draw("text", fold=fold))
    import matplotlib.pyplot as plt

    try:
        fig = circuit.draw("mpl", fold=fold)
    except MissingOptionalLibraryError:
        fig = _text_figure(str(circuit.draw("text", fold=fold or 160)))
    fig.savefig(out_path, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return out_path


def _text_figure(text: str, fontsize: float = 7.0) -> Any:
    """A matplotlib figure showing a monospace text drawing."""
    import matplotlib.pyplot as plt

    lines = text.splitlines() or [""]
    width = max(len(line) for line in lines) * 0.6 * fontsize / 72 + 0.5
    height = len(lines) * 1.25 * fontsize / 72 + 0.5
    fig = plt.figure(figsize=(width, height))
    fig.text(0.01, 0.99, text, family="monospace", fontsize=fontsize, va="top", ha="left")
    return fig
