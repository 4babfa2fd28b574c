"""Cut an ISA circuit into its input part (depends on the data only) and its weight part.

The noisy state after the input part is the same for every model and every training step, so it
is simulated once per data split (:mod:`.embedding`); only the weight part is simulated per step
(:mod:`.program`). The input part is the *ancestor closure* of the instructions that read an
input parameter (everything that must happen before one of them); the weight part is the rest, in
circuit order. Running the input part first and the weight part after is exact, noise included
(each error follows its own gate, and the reordering only moves instructions past ones they share
no qubit with in the dependency order), provided no weight-dependent instruction is an ancestor of
an input one; :func:`split_circuit` checks that. The transpiler can break it (it commutes ``rz``
gates through ``cz``), so noise-aware students put a barrier between embedding and ansatz before
transpiling (:func:`qkd_qiskit.noisy.barrier_student`).

Example:
    >>> from qiskit.circuit import Parameter, QuantumCircuit
    >>> x, w = Parameter("x"), Parameter("w")
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.rz(x, 0); _ = qc.sx(1); _ = qc.cz(0, 1); _ = qc.rz(w, 1); _ = qc.sx(0)
    >>> first, second = split_circuit(qc, [x], [w])
    >>> [i.operation.name for i in first.data], [i.operation.name for i in second.data]
    (['rz'], ['sx', 'cz', 'rz', 'sx'])
"""

from __future__ import annotations

from typing import Any, Iterable

from qiskit import QuantumCircuit


def instruction_parameters(inst: Any) -> set:
    """Every :class:`~qiskit.circuit.Parameter` that an instruction's angles read."""
    found: set = set()
    for p in inst.operation.params:
        found |= set(getattr(p, "parameters", ()))
    return found


def split_circuit(circuit: QuantumCircuit, input_params: Iterable[Any], weight_params: Iterable[Any]
                  ) -> tuple[QuantumCircuit, QuantumCircuit]:
    """``(input part, weight part)`` of a measurement-free circuit (see the module docstring);
    a ValueError when a weight-dependent instruction must precede an input-dependent one."""
    inputs, weights = set(input_params), set(weight_params)
    needed: set[int] = set()  # qubits with an input-part instruction later on
    first = [False] * len(circuit.data)
    for i in range(len(circuit.data) - 1, -1, -1):
        inst = circuit.data[i]
        qubits = {circuit.find_bit(q).index for q in inst.qubits}
        if instruction_parameters(inst) & inputs or qubits & needed:
            first[i] = True
            needed |= qubits
            if instruction_parameters(inst) & weights:
                raise ValueError(f"split_circuit: {inst.operation.name} on qubits {sorted(qubits)} reads a weight "
                                 "but must run before the input gates (put a barrier between embedding and ansatz)")
    parts = (circuit.copy_empty_like(), circuit.copy_empty_like())
    for inst, is_first in zip(circuit.data, first):
        parts[0 if is_first else 1].append(inst)
    return parts
