"""The primitives' caches: compiled programs by circuit identity, clbit maps that live only as
long as their program."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qkd_qiskit.engine import CompiledCircuit
from qkd_qiskit.primitives.clbits import clbit_map, clbit_matrix
from qkd_qiskit.primitives.programs import ProgramCache


def _circuit() -> QuantumCircuit:
    x, w = ParameterVector("x", 2), ParameterVector("weights", 1)
    qc = QuantumCircuit(2, 2)
    qc.ry(x[0], 0)
    qc.ry(x[1], 1)
    qc.crx(w[0], 0, 1)
    qc.measure([0, 1], [1, 0])
    return qc


def test_program_cache_splits_weights_and_recompiles_per_circuit():
    cache = ProgramCache(torch.float64, None, "auto")
    qc = _circuit()
    values = np.array([[0.3, 0.1, 0.2], [0.3, 0.4, 0.5]])  # parameters sorted: weights[0], x[0], x[1]
    entry = cache.entry(qc, values)
    assert [p.name for p in entry.params] == ["weights[0]", "x[0]", "x[1]"]
    assert entry.wcols.tolist() == [0] and entry.icols.tolist() == [1, 2]
    assert cache.entry(qc, values[:1]) is entry and cache.parameters(qc) is entry.params
    assert cache.entry(_circuit(), values) is not entry  # an equal but distinct circuit


def test_clbit_map_is_cached_while_its_program_lives():
    qc = _circuit()
    params = list(qc.parameters)  # weights[0], x[0], x[1]
    program = CompiledCircuit(qc, params[1:], params[:1], readout_qubits=())  # not compile_circuit's cache
    like = torch.zeros(1, dtype=torch.float64)
    mat = clbit_map(program, like)
    assert clbit_map(program, like) is mat and clbit_map(program, like.float()).dtype == torch.float32
    assert np.array_equal(mat.numpy(), clbit_matrix(program))
    assert mat.numpy().argmax(1).tolist() == [0, 2, 1, 3]  # q0 -> clbit 1, q1 -> clbit 0
    ref = weakref.ref(mat)
    del program, mat
    gc.collect()
    assert ref() is None
