"""The engine's public surface: the compile cache, the names kept at ``qkd_qiskit.engine``, and
its place in the package's layers."""

from __future__ import annotations

import ast
from pathlib import Path

import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from qkd_qiskit import engine
from qkd_qiskit.engine import CompiledCircuit, compile_circuit

ENGINE = Path(engine.__file__).parent
ALLOWED = {"qkd_qiskit.readout", "qkd_qiskit.catalog", "qkd_qiskit.circuits"}


def test_compile_cache_is_keyed_by_circuit_and_arguments():
    w = Parameter("w")
    qc = QuantumCircuit(2)
    qc.rx(w, 0)
    prog = compile_circuit(qc, [], [w])
    assert isinstance(prog, CompiledCircuit)
    assert compile_circuit(qc, [], [w]) is prog
    assert compile_circuit(qc, [], [w], readout="probs") is not prog
    assert compile_circuit(qc, [], [w], cache=False) is not prog
    other = qc.copy()
    assert compile_circuit(other, [], [w]) is not prog


def test_public_names():
    for name in ("CompiledCircuit", "compile_circuit", "compile_student", "QuantumLayer", "Mode",
                 "complex_dtype", "DENSE_MAX_QUBITS", "FACTOR_MAX_QUBITS"):
        assert name in engine.__all__ and hasattr(engine, name), name
    assert engine.complex_dtype(torch.float64) == torch.complex128
    assert engine.complex_dtype(torch.float32) == torch.complex64


def _package_imports(path: Path) -> set[str]:
    """Top-level ``qkd_qiskit`` units imported anywhere in ``path`` (``engine`` for its own modules)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add("qkd_qiskit.engine")
        elif isinstance(node, ast.ImportFrom) and node.level == 2:
            found |= {f"qkd_qiskit.{node.module}"} if node.module else {f"qkd_qiskit.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
    return {".".join(m.split(".")[:2]) for m in found if m.split(".")[0] == "qkd_qiskit"}


def test_engine_imports_only_the_layers_below_it():
    """Within the package the engine uses only readout conventions, the catalog and circuits,
    anywhere in its modules (function-level imports included)."""
    bad = {f"{path.name}: {m}" for path in ENGINE.glob("*.py")
           for m in _package_imports(path) - ALLOWED - {"qkd_qiskit.engine"}}
    assert not bad, sorted(bad)
    assert _package_imports(ENGINE / "layer.py") == {"qkd_qiskit.circuits", "qkd_qiskit.engine"}
