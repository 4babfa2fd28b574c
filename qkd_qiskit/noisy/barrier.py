"""A student circuit with a barrier between its embedding and its ansatz, for noise-aware training.

Without it the transpiler may commute weight gates (``rz``) back into the embedding (through
``cz``) or merge an input and a weight angle into one gate, and the circuit could no longer be cut
into an input part and a weight part (:mod:`.split`). The barrier changes no state (every
simulator skips it) and the same circuit is what a noise-trained run's students are evaluated on
(``qkd evaluate`` rebuilds it: :class:`qkd_qiskit.models.NoisyStudent`).

Example:
    >>> from qkd_qiskit.circuits import build_student
    >>> st = barrier_student(build_student("q2", n_qubits=3, layers=2, n_features=8))
    >>> names = [i.operation.name for i in st.circuit.data]
    >>> names.count("barrier"), names.index("barrier") > names.index("mux_ry")
    (1, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .split import instruction_parameters


def barrier_student(student: Any) -> Any:
    """A copy of a :class:`~qkd_qiskit.circuits.StudentCircuit` with a barrier on all qubits right
    after its last input gate (a ValueError if a weight gate comes before that)."""
    data = student.circuit.data
    inputs, weights = set(student.input_params), set(student.weight_params)
    last = max((i for i, inst in enumerate(data) if instruction_parameters(inst) & inputs), default=-1)
    if any(instruction_parameters(inst) & weights for inst in data[: last + 1]):
        raise ValueError(f"barrier_student: {student.name}: a weight gate comes before the last input gate")
    qc = student.circuit.copy_empty_like()
    for i, inst in enumerate(data):
        qc.append(inst)
        if i == last:
            qc.barrier()
    return dataclasses.replace(student, circuit=qc)
