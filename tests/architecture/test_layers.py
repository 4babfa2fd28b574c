"""The package's one-way flow, checked by walking every import (module level and inside functions).

Each top-level module or subpackage of ``qkd_qiskit`` has a layer; a module may import its own layer
or lower ones, never a higher one, and the import graph between modules has no cycle. The layer
order is the data flow of docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "qkd_qiskit"

LAYERS = [
    {"readout", "atomic", "outdir", "strict", "catalog", "progress", "shipped", "threads", "executors", "figures"},  # conventions, file helpers, shipped files, torch threads
    {"config"},
    {"data"},
    {"circuits"},
    {"engine"},
    {"primitives"},
    {"backends"},
    {"qnn", "noisy"},
    {"models"},
    {"distill", "train_step"},
    {"rundir", "summaries"},
    {"trained"},
    {"experiments", "studies", "sweep", "reuse"},
    {"calibrate", "evaluate"},
    {"jobs"},
    {"report", "circuit_report", "noise_study", "kd_regimes", "robustness"},
    {"bench", "cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``qkd_qiskit`` module this file imports, anywhere in it (resolved to full names)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("qkd_qiskit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("qkd_qiskit"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}  # `from . import x` imports x
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer():
    units = {_unit(m) for m in _graph()} - {""}
    assert units <= set(LAYER), f"modules without a declared layer: {sorted(units - set(LAYER))}"


def test_no_import_against_the_flow():
    bad = []
    for module, targets in _graph().items():
        if not _unit(module):
            continue
        for t in targets:
            if _unit(t) and LAYER[_unit(t)] > LAYER[_unit(module)]:
                bad.append(f"{module} -> {t}")
    assert not bad, "imports against the flow: " + ", ".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in graph.get(m, ()):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_walker_sees_function_level_imports(tmp_path):
    """The oracle for the checks above: a function-level relative import is found."""
    src = PACKAGE / "config.py"
    assert "qkd_qiskit.catalog" in _imports(src) and "qkd_qiskit.strict" in _imports(src)


def test_config_imports_no_torch():
    code = "import sys, qkd_qiskit.config, qkd_qiskit.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PRIVATE = re.compile(r"\b(?!self\b|cls\b)([A-Za-z_][A-Za-z0-9_]*)\._[a-z][A-Za-z0-9_]*")


def test_no_private_names_of_other_libraries():
    """No ``obj._name`` access except on ``self``/``cls`` (our own objects) - another library's
    private names break silently on upgrade."""
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            code = re.sub(r"(\"[^\"]*\"|'[^']*')", "", code)
            if PRIVATE.search(code):
                hits.append(f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}")
    assert not hits, "private attribute access:\n" + "\n".join(hits)
