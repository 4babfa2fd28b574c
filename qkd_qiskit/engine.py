"""Exact, batched, differentiable simulation of parameterised Qiskit circuits in torch.

The :class:`~qiskit.circuit.QuantumCircuit` is the single source of truth: :func:`compile_circuit`
reads its gates (recursing into gate definitions it does not know), extracts every angle as an
affine function of the input and weight parameters, and compiles the circuit once into a short
list of fused tensor operations. Training cost is then dominated by a handful of batched matmuls
instead of one torch op per gate, which is what makes a 6-qubit step take about a millisecond.

The compiled program, in order:

* **prep**: a leading run of RY / multiplexed-RY (``mux_ry``) gates whose target is still ``|0>``
  (the amplitude-embedding tree) is a *product* of cos/sin factors per basis amplitude, computed
  in one gather + product for all samples (real arithmetic).
* **stages**: the rest is cut into stages ``U = P . D . L``: ``L`` a tensor product of per-qubit
  2x2 matrices (runs of 1-qubit gates, all gates of all stages evaluated in one vectorised op),
  ``D`` a diagonal phase (RZ, RZZ, CP, CZ, ... all merged, computed with one matmul), ``P`` a
  constant basis permutation (CX chains, SWAP, X, ...). Stages that depend only on weights are
  built once per model (not per sample). The local part is applied as two half-register
  matmuls, ``K_hi psi K_lo^T`` ("factored" mode: memory grows as ``2^n``; a half wider than
  ``FACTOR_MAX_QUBITS`` is itself applied as two Kronecker factors, so the work per stage stays
  near ``2^n`` times a small factor instead of ``2^n * 2^(n/2)``); "dense" mode
  fuses each stage into one ``(2^n, 2^n)`` unitary (one matmul per stage, but ``4^n`` memory and
  ``8^n`` build work). Measured on 2 CPU cores (``qkd bench``), dense only pays up to
  ``DENSE_MAX_QUBITS`` = 5 qubits and is unusable beyond ~10, so ``mode="auto"`` switches to
  factored above 5 qubits. Stages with input parameters are built per sample (factored).
* **readout**: ``|amp|^2`` times a constant sign (``"z"``) or marginalisation (``"probs"``) matrix.

A hand-written backward for the stage chain and ``torch.compile`` were both tried and measured
slower than plain autograd over these few fused ops, so neither is used.

Mid-circuit measurements are handled exactly by deferred measurement: a measured qubit must never
be acted on again (checked at compile time), so its outcome equals its final computational-basis
value and summing probabilities over it marginalises it.

Everything is vectorised over ``M`` independent models, each with its own weights and its own
mini-batch: ``forward(angles (M, B, n_inputs), weights (M, n_weights)) -> (M, B, n_outputs)``.

Example:
    >>> import torch
    >>> from qkd_qiskit.circuits import build_student
    >>> st = build_student("hea")
    >>> gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    >>> layer = QuantumLayer(st, n_models=2, generators=gens)
    >>> layer(torch.rand(2, 32, 64)).shape
    torch.Size([2, 32, 6])
    >>> prog = compile_circuit(st.circuit, st.input_params, st.weight_params, readout_qubits=[0, 1])
    >>> prog(torch.zeros(1, 4, 63), torch.zeros(1, 72)).shape   # |0..0>: <Z0> = <Z1> = 1
    torch.Size([1, 4, 2])
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal, Sequence

import numpy as np
import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from torch import nn

__all__ = [
    "DENSE_MAX_QUBITS",
    "CompiledCircuit",
    "QuantumLayer",
    "compile_circuit",
    "compile_student",
    "complex_dtype",
]

DENSE_MAX_QUBITS = 5
"""Auto mode fuses weight stages into dense ``(2^n, 2^n)`` unitaries up to this many qubits."""
FACTOR_MAX_QUBITS = 5
"""Factored mode: a half register wider than this is applied as two Kronecker factors, so the
work per stage stays ~``2^n * 2^(n/4)`` instead of ``2^n * 2^(n/2)`` (registers above 10 qubits)."""

Mode = Literal["auto", "dense", "factored"]
_SKIP = frozenset({"barrier", "delay", "id"})
_PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}
# Diagonal phase tables ``phase(local index) = angle * table`` of parameterised diagonal gates
# (local index = sum_j bit(qargs[j]) << j; global phases are irrelevant and dropped).
_DIAG_TABLES = {
    "rzz": np.array([-0.5, 0.5, 0.5, -0.5]),
    "cp": np.array([0.0, 0.0, 0.0, 1.0]),
    "cu1": np.array([0.0, 0.0, 0.0, 1.0]),
    "crz": np.array([0.0, -0.5, 0.0, 0.5]),
}
_ATOL = 1e-12


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex64 for float32 (and lower), complex128 for float64."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


# --------------------------------------------------------------------------------------------------
# Atoms: the circuit read into a small gate vocabulary (compile time only, numpy)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Affine:
    """``angle = sum_j coef[j] * params[j] + offset`` over the joint vector ``[inputs, weights]``."""

    coef: tuple[tuple[int, float], ...]
    offset: float

    def params(self) -> set[int]:
        return {j for j, _ in self.coef}


@dataclass
class _Rot:
    """``exp(-i angle/2 P)`` on one qubit, ``P`` in X, Y, Z."""

    q: int
    axis: str
    angle: _Affine


@dataclass
class _Const1:
    """A constant 2x2 unitary on one qubit."""

    q: int
    mat: np.ndarray


@dataclass
class _Diag:
    """Diagonal gate: ``phase(local index) = angle * table`` on ``qubits``."""

    qubits: tuple[int, ...]
    angle: _Affine
    table: np.ndarray


@dataclass
class _Mono:
    """Constant monomial gate = permutation after diagonal: ``new[r] = e^{i phase[src[r]]} old[src[r]]``."""

    qubits: tuple[int, ...]
    src: np.ndarray
    phase: np.ndarray


@dataclass
class _Mux:
    """Multiplexed RY: for control state ``c`` apply ``RY(angles[c])`` to ``target``."""

    target: int
    controls: tuple[int, ...]
    angles: list[_Affine]


@dataclass
class _Measure:
    q: int
    clbit: int


def _atom_qubits(atom: Any) -> tuple[int, ...]:
    if isinstance(atom, (_Rot, _Const1)):
        return (atom.q,)
    if isinstance(atom, _Mux):
        return (*atom.controls, atom.target)
    if isinstance(atom, _Measure):
        return (atom.q,)
    return atom.qubits


def _atom_params(atom: Any) -> set[int]:
    if isinstance(atom, (_Rot, _Diag)):
        return atom.angle.params()
    if isinstance(atom, _Mux):
        return set().union(*(a.params() for a in atom.angles))
    return set()


class _ParamIndex:
    """Maps circuit parameters to joint indices and turns expressions into :class:`_Affine`."""

    def __init__(self, input_params: Sequence[Parameter], weight_params: Sequence[Parameter]):
        self.order = list(input_params) + list(weight_params)
        self.index = {p: i for i, p in enumerate(self.order)}
        if len(self.index) != len(self.order):
            raise ValueError("compile_circuit: input_params and weight_params must be distinct")
        self.n_inputs = len(input_params)

    def affine(self, expr: Any) -> _Affine:
        """Affine form of a gate parameter; raises for unknown or non-affine parameters."""
        if isinstance(expr, Parameter):
            return _Affine(((self._lookup(expr), 1.0),), 0.0)
        if isinstance(expr, ParameterExpression):
            params = expr.parameters
            if not params:
                return _Affine((), _real(expr))
            coef = []
            for p in params:
                grad = expr.gradient(p)
                if isinstance(grad, ParameterExpression) and grad.parameters:
                    raise ValueError(f"compile_circuit: gate angle {expr} is not affine in {p}")
                coef.append((self._lookup(p), _real(grad)))
            return _Affine(tuple(sorted(coef)), _real(expr.bind({p: 0.0 for p in params})))
        return _Affine((), _real(expr))

    def _lookup(self, p: Parameter) -> int:
        if p not in self.index:
            raise ValueError(
                f"compile_circuit: parameter {p.name!r} is neither an input nor a weight parameter")
        return self.index[p]


def _real(value: Any) -> float:
    z = complex(value)
    if abs(z.imag) > 1e-12:
        raise ValueError(f"compile_circuit: complex gate parameter {value}")
    return z.real


def _monomial(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(src, phase)`` if ``mat`` is a permutation times unit phases, else None."""
    dim = mat.shape[0]
    src, phase = np.zeros(dim, dtype=np.int64), np.zeros(dim)
    for c in range(dim):
        rows = np.flatnonzero(np.abs(mat[:, c]) > 1e-9)
        if len(rows) != 1 or abs(abs(mat[rows[0], c]) - 1) > 1e-9:
            return None
        src[rows[0]] = c
        phase[c] = np.angle(mat[rows[0], c])
    return src, phase


def _read_atoms(circuit: QuantumCircuit, pidx: _ParamIndex) -> list[Any]:
    """Flatten ``circuit`` into atoms (recursing into definitions of gates not handled natively)."""
    atoms: list[Any] = []
    qmap = {q: i for i, q in enumerate(circuit.qubits)}
    cmap = {c: i for i, c in enumerate(circuit.clbits)}
    _read_into(circuit, [qmap[q] for q in circuit.qubits], [cmap[c] for c in circuit.clbits], pidx, atoms)
    return atoms


def _read_into(circuit: QuantumCircuit, qubits: list[int], clbits: list[int], pidx: _ParamIndex,
               atoms: list[Any]) -> None:
    local_q = {q: qubits[i] for i, q in enumerate(circuit.qubits)}
    local_c = {c: clbits[i] for i, c in enumerate(circuit.clbits)}
    for inst in circuit.data:
        qs = tuple(local_q[q] for q in inst.qubits)
        cs = tuple(local_c[c] for c in inst.clbits)
        atoms.extend(_atoms_of(inst.operation, qs, cs, pidx))


def _atoms_of(op: Any, qs: tuple[int, ...], cs: tuple[int, ...], pidx: _ParamIndex) -> list[Any]:
    """Atoms of one instruction; unknown gates are expanded through their ``definition``."""
    name = op.name
    if name in _SKIP:
        return []
    if name == "measure":
        return [_Measure(qs[0], cs[0])]
    if getattr(op, "condition", None) is not None or op.__class__.__name__.endswith("Op"):
        raise ValueError(f"compile_circuit: classical control flow ({name}) is not supported")
    params = list(getattr(op, "params", []))
    native = _native_atoms(name, params, qs, pidx)
    if native is not None:
        return native
    free = any(isinstance(p, ParameterExpression) and p.parameters for p in params)
    if not free and op.num_qubits >= 1 and op.num_clbits == 0 and name not in ("reset", "initialize"):
        const = _const_atoms(op, qs)
        if const is not None:
            return const
    definition = getattr(op, "definition", None)
    if definition is None or name in ("reset", "initialize"):
        raise ValueError(f"compile_circuit: unsupported instruction {name!r} (no unitary definition)")
    out: list[Any] = []
    _read_into(definition, list(qs), list(cs), pidx, out)
    return out


def _native_atoms(name: str, params: list[Any], qs: tuple[int, ...], pidx: _ParamIndex) -> list[Any] | None:
    """Atoms for gates read directly (rotations, phases, diagonal 2-qubit gates, mux_ry)."""
    if name in ("rx", "ry", "rz"):
        return [_Rot(qs[0], name[1].upper(), pidx.affine(params[0]))]
    if name in ("p", "u1"):
        return [_Rot(qs[0], "Z", pidx.affine(params[0]))]
    if name in ("u", "u3", "u2"):
        theta, phi, lam = (math.pi / 2, *params) if name == "u2" else params
        return [_Rot(qs[0], "Z", pidx.affine(lam)), _Rot(qs[0], "Y", pidx.affine(theta)),
                _Rot(qs[0], "Z", pidx.affine(phi))]
    if name in _DIAG_TABLES:
        return [_Diag(qs, pidx.affine(params[0]), _DIAG_TABLES[name])]
    if name == "mux_ry":
        return [_Mux(qs[-1], qs[:-1], [pidx.affine(p) for p in params])]
    return None


def _const_atoms(op: Any, qs: tuple[int, ...]) -> list[Any] | None:
    """Constant gates: any 1-qubit matrix, or a monomial (permutation x phases) multi-qubit gate."""
    try:
        mat = np.asarray(op.to_matrix(), dtype=complex)
    except Exception:  # noqa: BLE001 - gates without a matrix fall back to their definition
        return None
    if len(qs) == 1:
        return [_Const1(qs[0], mat)]
    mono = _monomial(mat)
    return None if mono is None else [_Mono(qs, *mono)]


# --------------------------------------------------------------------------------------------------
# Scheduling: prep (product-state tree), mux ops and fused stages
# --------------------------------------------------------------------------------------------------


@dataclass
class _Prep:
    """Leading product-form gates on fresh qubits: ``amp[i] = prod_k factor_k(i)``."""

    slots: list[_Affine] = field(default_factory=list)  # rotation angles (cos/sin factors)
    consts: list[float] = field(default_factory=list)  # constant factors
    factors: list[tuple[Any, int]] = field(default_factory=list)  # (atom, first slot or const)
    touched: list[int] = field(default_factory=list)


@dataclass
class _Stage:
    """``U = P . D . L`` with L per-qubit 2x2 products, D diagonal phases, P a basis permutation."""

    n: int
    per_sample: bool | None = None  # None while only constant gates were added
    local: dict[int, list[Any]] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    diag_terms: list[tuple[_Affine, np.ndarray]] = field(default_factory=list)
    const_phase: np.ndarray | None = None
    src: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.const_phase = np.zeros(2**self.n)
        self.src = np.arange(2**self.n)


class _Layout:
    """Bit tables of the 2^n basis states (compile time)."""

    def __init__(self, n: int):
        self.n = n
        self.idx = np.arange(2**n)
        self.bits = (self.idx[:, None] >> np.arange(n)[None, :]) & 1

    def local_index(self, qubits: Sequence[int]) -> np.ndarray:
        out = np.zeros(2**self.n, dtype=np.int64)
        for j, q in enumerate(qubits):
            out |= self.bits[:, q] << j
        return out

    def expand_src(self, qubits: Sequence[int], src: np.ndarray) -> np.ndarray:
        """Full-register source index of a permutation acting on ``qubits``."""
        loc = self.local_index(qubits)
        mask = sum(1 << q for q in qubits)
        new_loc = src[loc]
        out = self.idx & ~mask
        for j, q in enumerate(qubits):
            out |= ((new_loc >> j) & 1) << q
        return out


def _stage_add(stage: _Stage, atom: Any, lay: _Layout) -> bool:
    """Add ``atom`` at the end of ``stage`` if the P.D.L form allows it; returns success."""
    if isinstance(atom, (_Rot, _Const1)):
        if atom.q not in stage.closed:
            stage.local.setdefault(atom.q, []).append(atom)
            return True
        if isinstance(atom, _Rot):
            if atom.axis != "Z":
                return False
            return _stage_add(stage, _Diag((atom.q,), atom.angle, np.array([-0.5, 0.5])), lay)
        mono = _monomial(atom.mat)
        return mono is not None and _stage_add(stage, _Mono((atom.q,), *mono), lay)
    inv = np.argsort(stage.src)
    if isinstance(atom, _Diag):
        pattern = atom.table[lay.local_index(atom.qubits)]
        stage.diag_terms.append((atom.angle, pattern[inv]))
    else:  # _Mono: diagonal first (conjugated through the current permutation), then permutation
        stage.const_phase = stage.const_phase + atom.phase[lay.local_index(atom.qubits)][inv]
        stage.src = stage.src[lay.expand_src(atom.qubits, atom.src)]
    stage.closed.update(atom.qubits)
    return True


def _consume_prep(atoms: list[Any]) -> tuple[_Prep, int]:
    """Leading RY / mux_ry / real constant 1-qubit gates whose target is still |0>."""
    prep, touched, pos = _Prep(), set(), 0
    measured: set[int] = set()
    for atom in atoms:
        if isinstance(atom, _Measure):
            measured.add(atom.q)
        elif isinstance(atom, _Mux) and atom.target not in touched:
            prep.factors.append((atom, len(prep.slots)))
            prep.slots.extend(atom.angles)
        elif isinstance(atom, _Rot) and atom.axis == "Y" and atom.q not in touched:
            prep.factors.append((_Mux(atom.q, (), [atom.angle]), len(prep.slots)))
            prep.slots.append(atom.angle)
        elif (isinstance(atom, _Const1) and atom.q not in touched
              and np.allclose(atom.mat[:, 0].imag, 0, atol=_ATOL)):
            prep.factors.append((atom, len(prep.consts)))
            prep.consts.extend(atom.mat[:, 0].real.tolist())
        else:
            break
        if not isinstance(atom, _Measure):
            hit = [q for q in _atom_qubits(atom) if q in measured]
            if hit:
                raise ValueError(f"compile_circuit: qubit {hit[0]} is acted on after being measured "
                                 "(deferred measurement needs measured qubits to stay idle)")
            touched.add(atom.target if isinstance(atom, _Mux) else atom.q)
        pos += 1
    prep.touched = sorted(touched)
    return prep, pos


def _prep_index(prep: _Prep, lay: _Layout) -> np.ndarray:
    """Gather index (2^n, K) into the table ``[cos(slots), sin(slots), consts, 0, 1]``."""
    n_s, n_c = len(prep.slots), len(prep.consts)
    zero, one = 2 * n_s + n_c, 2 * n_s + n_c + 1
    k = max(1, len(prep.factors))
    idx = np.full((2**lay.n, k), one, dtype=np.int64)
    untouched = [q for q in range(lay.n) if q not in prep.touched]
    outside = lay.bits[:, untouched].any(axis=1) if untouched else np.zeros(2**lay.n, bool)
    earlier: set[int] = set()
    for f, (atom, base) in enumerate(prep.factors):
        if isinstance(atom, _Mux):
            ctrl = [q if q in earlier else None for q in atom.controls]
            c = sum((lay.bits[:, q] << j) if q is not None else 0 for j, q in enumerate(ctrl))
            bit = lay.bits[:, atom.target]
            idx[:, f] = base + c + n_s * bit
            earlier.add(atom.target)
        else:
            idx[:, f] = 2 * n_s + base + lay.bits[:, atom.q]
            earlier.add(atom.q)
    idx[outside] = one
    idx[outside, 0] = zero
    return idx


def _schedule(atoms: list[Any], n_qubits: int, n_inputs: int) -> tuple[_Prep, list[Any], dict[int, int]]:
    """Split atoms into prep, then a list of ``_Mux`` / ``_Stage``; also the clbit -> qubit map."""
    lay = _Layout(n_qubits)
    prep, start = _consume_prep(atoms)
    measured: dict[int, int] = {}  # qubit -> clbit of its (last) measurement
    clbit_of: dict[int, int] = {}
    for atom in atoms[:start]:
        if isinstance(atom, _Measure):
            measured[atom.q] = atom.clbit
            clbit_of[atom.clbit] = atom.q
    ops: list[Any] = []
    cur: _Stage | None = None
    for atom in atoms[start:]:
        if isinstance(atom, _Measure):
            measured[atom.q] = atom.clbit
            clbit_of[atom.clbit] = atom.q
            continue
        hit = [q for q in _atom_qubits(atom) if q in measured]
        if hit:
            raise ValueError(f"compile_circuit: qubit {hit[0]} is acted on after being measured "
                             "(deferred measurement needs measured qubits to stay idle)")
        if isinstance(atom, _Mux):
            cur = _flush(cur, ops)
            ops.append(atom)
            continue
        params = _atom_params(atom)
        kind = None if not params else any(j < n_inputs for j in params)
        if cur is not None and kind is not None and cur.per_sample is not None and kind != cur.per_sample:
            cur = _flush(cur, ops)
        if cur is None:
            cur = _Stage(n_qubits)
        if not _stage_add(cur, atom, lay):
            cur = _flush(cur, ops)
            cur = _Stage(n_qubits)
            _stage_add(cur, atom, lay)
        if kind is not None:
            cur.per_sample = kind
    _flush(cur, ops)
    return prep, ops, clbit_of


def _flush(stage: _Stage | None, ops: list[Any]) -> None:
    if stage is not None:
        if stage.per_sample is None:
            stage.per_sample = False
        ops.append(stage)
    return None


# --------------------------------------------------------------------------------------------------
# Numeric tables of a group of stages (compile time, float64 numpy)
# --------------------------------------------------------------------------------------------------

_DENSE_TABLE_LIMIT = 1 << 22  # entries of a dense coefficient matrix before switching to a gather


@dataclass
class _AffineMap:
    """Compile-time form of ``angle_s = scale * (coef . params + offset)`` for a list of slots.

    The input and weight parts are stored separately, each as ``None`` (unused), ``"ident"``
    (slot s = scale * input s: the amplitude-embedding case), ``"select"`` (each slot reads one
    parameter: a gather) or ``"dense"`` (a coefficient matrix, one matmul).
    """

    n_slots: int
    in_kind: str | None
    in_data: Any
    w_kind: str | None
    w_data: Any
    offset: np.ndarray
    scale: float

    @staticmethod
    def build(affines: Sequence[_Affine], n_in: int, n_w: int, scale: float) -> "_AffineMap":
        n_s = len(affines)
        offset = scale * np.array([a.offset for a in affines], dtype=float)
        in_terms = [[(j, c) for j, c in a.coef if j < n_in] for a in affines]
        w_terms = [[(j - n_in, c) for j, c in a.coef if j >= n_in] for a in affines]
        ident = (n_s <= n_in and all(t == [(s, 1.0)] for s, t in enumerate(in_terms))
                 and not any(w_terms) and not offset.any())
        in_kind, in_data = ("ident", None) if ident else _affine_part(in_terms, n_in, n_s, scale)
        w_kind, w_data = _affine_part(w_terms, n_w, n_s, scale)
        return _AffineMap(n_s, in_kind, in_data, w_kind, w_data, offset, scale)


def _affine_part(terms: list[list[tuple[int, float]]], rows: int, n_s: int, scale: float
                 ) -> tuple[str | None, Any]:
    if not any(terms):
        return None, None
    if rows * n_s <= _DENSE_TABLE_LIMIT:
        mat = np.zeros((rows, n_s))
        for s, t in enumerate(terms):
            for j, c in t:
                mat[j, s] += scale * c
        return "dense", mat
    if all(len(t) <= 1 for t in terms):
        idx = np.array([t[0][0] if t else 0 for t in terms], dtype=np.int64)
        coef = np.array([scale * t[0][1] if t else 0.0 for t in terms])
        return "select", (idx, coef)
    raise ValueError("compile_circuit: too many parameters mixed into one gate angle table")


def _slot_matrices(atom: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Affine]:
    """``mat = cos(a/2) A + sin(a/2) Bm + C`` of a local slot (None = identity padding)."""
    zero = np.zeros((2, 2), dtype=complex)
    if atom is None:
        return np.eye(2, dtype=complex), zero, zero, _Affine((), 0.0)
    if isinstance(atom, _Rot):
        return np.eye(2, dtype=complex), -1j * _PAULI[atom.axis], zero, atom.angle
    return zero, zero, atom.mat.astype(complex), _Affine((), 0.0)


def _interleave(m: np.ndarray) -> np.ndarray:
    """2x2 complex -> 8 reals ``(re, im)`` per entry, row-major (``view_as_complex`` order)."""
    return np.stack([m.real, m.imag], -1).reshape(-1)


@dataclass
class _StageGroup:
    """All stages of one kind (per-model weights or per-sample inputs), built in one batch."""

    stages: list[_Stage]
    n: int
    depth: int
    slots: _AffineMap  # half angles of the S * n * depth local slots
    abc: np.ndarray  # (3, slots, 8): mat = cos * A + sin * Bm + C, interleaved re/im
    is_real: bool
    diag: _AffineMap | None  # angles of the diagonal terms
    diag_pat: np.ndarray | None  # (n_terms, S * 2^n)
    const_phase: np.ndarray  # (S, 2^n)
    has_phase: bool
    real_phase: bool
    src: np.ndarray  # (S, 2^n)
    has_perm: np.ndarray  # (S,) bool
    lo_used: np.ndarray  # (S,) bool: any local gate on the low half (qubits < h)
    hi_used: np.ndarray

    @staticmethod
    def build(stages: list[_Stage], n: int, n_in: int, n_w: int, h: int) -> "_StageGroup":
        depth = max([1] + [len(v) for s in stages for v in s.local.values()])
        slots = [
            s.local.get(q, [])[d] if d < len(s.local.get(q, [])) else None
            for s in stages for q in range(n) for d in range(depth)
        ]
        mats = [_slot_matrices(a) for a in slots]
        abc = np.stack([np.stack([_interleave(m[r]) for m in mats]) for r in range(3)])
        terms = [(a, p, si) for si, s in enumerate(stages) for a, p in s.diag_terms]
        size = 2**n
        diag = diag_pat = None
        if terms:
            diag = _AffineMap.build([a for a, _, _ in terms], n_in, n_w, 1.0)
            diag_pat = np.zeros((len(terms), len(stages) * size))
            for t, (_, p, si) in enumerate(terms):
                diag_pat[t, si * size:(si + 1) * size] = p
        const_phase = np.stack([s.const_phase for s in stages])
        wrapped = np.mod(const_phase, 2 * np.pi)
        real_phase = not terms and bool(np.all(np.isclose(wrapped, 0) | np.isclose(wrapped, np.pi)
                                                | np.isclose(wrapped, 2 * np.pi)))
        return _StageGroup(
            stages=stages, n=n, depth=depth,
            slots=_AffineMap.build([m[3] for m in mats], n_in, n_w, 0.5),
            abc=abc, is_real=bool(np.allclose(abc[:, :, 1::2], 0)), diag=diag, diag_pat=diag_pat,
            const_phase=const_phase, has_phase=bool(terms) or not np.allclose(const_phase, 0),
            real_phase=real_phase, src=np.stack([s.src for s in stages]),
            has_perm=np.array([not np.array_equal(s.src, np.arange(size)) for s in stages]),
            lo_used=np.array([any(q < h for q in s.local) for s in stages]),
            hi_used=np.array([any(q >= h for q in s.local) for s in stages]),
        )

    @property
    def real(self) -> bool:
        return self.is_real and self.real_phase


# --------------------------------------------------------------------------------------------------
# The compiled program
# --------------------------------------------------------------------------------------------------


class CompiledCircuit:
    """A circuit compiled for exact batched simulation; call it like a function.

    ``program(angles, weights)``: ``angles`` (M, B, n_inputs) and ``weights`` (M, n_weights) (or
    (B, n_inputs) and (n_weights,) for one model) -> readout (M, B, n_outputs) (or (B, n_outputs)).
    Use :meth:`state` for the final statevector and :meth:`probabilities` for all 2^n outcomes.

    Internally the state is kept as ``(M, A, B, L)`` with ``A = 2^(n-h)`` (high qubits),
    ``L = 2^h`` (low qubits) and the batch in the middle: a tensor product ``K_hi (x) K_lo`` then
    acts as two plain ``bmm`` calls with no copies, and a basis permutation is one
    ``index_select``. ``h = n // 2`` in factored mode; ``h = 0`` is dense mode (one
    ``2^n x 2^n`` matrix per stage, with phases and permutations folded in).
    """

    def __init__(self, circuit: QuantumCircuit, input_params: Sequence[Parameter],
                 weight_params: Sequence[Parameter], readout_qubits: Sequence[int] | None = None,
                 readout: Literal["z", "probs"] = "z", mode: Mode = "auto"):
        if readout not in ("z", "probs"):
            raise ValueError(f"compile_circuit: readout must be 'z' or 'probs', got {readout!r}")
        if mode not in ("auto", "dense", "factored"):
            raise ValueError(f"compile_circuit: mode must be auto, dense or factored, got {mode!r}")
        self.n_qubits = circuit.num_qubits
        self.n_clbits = circuit.num_clbits
        self.input_params = tuple(input_params)
        self.weight_params = tuple(weight_params)
        self.n_inputs, self.n_weights = len(self.input_params), len(self.weight_params)
        pidx = _ParamIndex(self.input_params, self.weight_params)
        missing = set(circuit.parameters) - set(pidx.index)
        if missing:
            raise ValueError(f"compile_circuit: circuit parameters {sorted(p.name for p in missing)} "
                             "are neither input nor weight parameters")
        self.readout = readout
        self.readout_qubits = tuple(range(self.n_qubits) if readout_qubits is None else readout_qubits)
        if any(not 0 <= q < self.n_qubits for q in self.readout_qubits):
            raise ValueError(f"compile_circuit: readout qubits {self.readout_qubits} out of range")
        self.dense = mode == "dense" or (mode == "auto" and self.n_qubits <= DENSE_MAX_QUBITS)
        self.mode = "dense" if self.dense else "factored"
        self.h = 0 if self.dense else self.n_qubits // 2
        self._compile(_read_atoms(circuit, pidx))
        self._cache: dict[tuple[torch.dtype, torch.device], SimpleNamespace] = {}

    # ---------------------------------------------------------------------------- compile
    def _compile(self, atoms: list[Any]) -> None:
        n, n_in, n_w = self.n_qubits, self.n_inputs, self.n_weights
        prep, ops, self.clbit_qubits = _schedule(atoms, n, n_in)
        lay = _Layout(n)
        self._prep = prep
        self._prep_idx = _prep_index(prep, lay)
        self._prep_map = _AffineMap.build(prep.slots, n_in, n_w, 0.5)
        w_stages = [op for op in ops if isinstance(op, _Stage) and not op.per_sample]
        i_stages = [op for op in ops if isinstance(op, _Stage) and op.per_sample]
        self._wgroup = _StageGroup.build(w_stages, n, n_in, n_w, self.h) if w_stages else None
        self._igroup = _StageGroup.build(i_stages, n, n_in, n_w, self.h) if i_stages else None
        self._plan: list[tuple[str, Any]] = []
        counters = {"weight": 0, "input": 0}
        for op in ops:
            if isinstance(op, _Mux):
                self._plan.append(("mux", self._mux_tables(op, lay)))
            else:
                kind = "input" if op.per_sample else "weight"
                self._plan.append((kind, counters[kind]))
                counters[kind] += 1
        self.n_stages = len(ops)
        prep_params = set().union(*(a.params() for a in prep.slots)) if prep.slots else set()
        self.encodable = (not any(j >= n_in for j in prep_params)
                          and not any(j < n_in for j in self._later_params(ops)))
        bits = lay.bits
        if self.readout == "z":
            self._readout = (1 - 2 * bits[:, list(self.readout_qubits)]).astype(float)
        else:
            out = np.zeros(2**n, dtype=np.int64)
            for j, q in enumerate(self.readout_qubits):
                out |= bits[:, q] << j
            self._readout = np.eye(2 ** len(self.readout_qubits))[out]
        self.n_outputs = self._readout.shape[1]

    @staticmethod
    def _later_params(ops: list[Any]) -> set[int]:
        """Parameters used after the prep (by mux ops and stages)."""
        out: set[int] = set()
        for op in ops:
            if isinstance(op, _Mux):
                out |= _atom_params(op)
            else:
                for slots in op.local.values():
                    for a in slots:
                        out |= _atom_params(a)
                for a, _ in op.diag_terms:
                    out |= a.params()
        return out

    def _mux_tables(self, op: _Mux, lay: _Layout) -> SimpleNamespace:
        t = op.target
        rest = lay.idx[(lay.idx >> t) & 1 == 0]  # basis states with target bit 0, in (hi, lo) order
        cidx = np.zeros(len(rest), dtype=np.int64)
        for j, q in enumerate(op.controls):
            cidx |= ((rest >> q) & 1) << j
        return SimpleNamespace(target=t, cidx=cidx,
                               map=_AffineMap.build(op.angles, self.n_inputs, self.n_weights, 0.5))

    # ---------------------------------------------------------------------------- tensors
    def _tensors(self, dtype: torch.dtype, device: torch.device) -> SimpleNamespace:
        """Torch copies of the compile-time tables for one dtype/device (cached)."""
        key = (dtype, device)
        if key not in self._cache:
            def f(a: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

            def i(a: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=device)

            plan = []
            for kind, x in self._plan:
                if kind == "mux":
                    x = SimpleNamespace(target=x.target, cidx=i(x.cidx), map=_map_t(x.map, f, i))
                plan.append((kind, x))
            self._cache[key] = SimpleNamespace(
                dtype=dtype, device=device, prep_idx=i(self._prep_idx),
                prep_map=_map_t(self._prep_map, f, i),
                prep_consts=f(np.array(self._prep.consts + [0.0, 1.0])),
                readout=f(self._readout), plan=plan, one=f(np.ones(())),
                wgroup=_group_t(self._wgroup, f, i), igroup=_group_t(self._igroup, f, i),
                by_batch={},
            )
        return self._cache[key]

    def _batch_tables(self, t: SimpleNamespace, b: int) -> SimpleNamespace:
        """Gather indices that depend on the batch size (cached per B)."""
        if b not in t.by_batch:
            size, lo = 2**self.n_qubits, 2**self.h
            hi = size // lo
            a_i = torch.arange(hi, device=t.device)[:, None, None]
            b_i = torch.arange(b, device=t.device)[None, :, None]
            l_i = torch.arange(lo, device=t.device)[None, None, :]

            def perm(src: torch.Tensor) -> torch.Tensor:
                s = src[a_i * lo + l_i]
                return ((s // lo) * (b * lo) + b_i * lo + s % lo).reshape(-1)

            k = t.prep_idx.shape[1]
            n_c = t.prep_consts.shape[0] + 2 * t.prep_map.n
            prep = (b_i.unsqueeze(-1) * n_c + t.prep_idx.view(hi, 1, lo, k)).reshape(-1)
            groups = {}
            for name in ("wgroup", "igroup"):
                gt = getattr(t, name)
                if gt is not None:
                    groups[name] = [perm(gt.src[s]) if gt.g.has_perm[s] else None
                                    for s in range(len(gt.g.stages))]
            t.by_batch[b] = SimpleNamespace(prep=prep, **groups)
        return t.by_batch[b]

    # ---------------------------------------------------------------------------- forward
    def __call__(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        return self.forward(angles, weights)

    def forward(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """Readout ``(M, B, n_outputs)``: <Z> per readout qubit, or outcome probabilities."""
        probs, t, squeeze = self._probs(angles, weights)
        out = torch.matmul(probs, t.readout)
        return out[0] if squeeze else out

    def probabilities(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """All ``2^n`` basis-state probabilities, ``(M, B, 2^n)``."""
        probs, _, squeeze = self._probs(angles, weights)
        return probs[0] if squeeze else probs

    def state(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """Final statevector ``(M, B, 2^n)`` (complex; basis index little-endian as in Qiskit).

        Exact up to a global phase: global phases of gates (``u``, ``p``) and of gate definitions
        are not tracked, since no readout, probability or expectation value depends on them."""
        psi, _, squeeze = self._run(angles, weights)
        psi = psi if psi.is_complex() else psi.to(complex_dtype(psi.dtype))
        out = _batch_major(psi)
        return out[0] if squeeze else out

    def encode(self, angles: torch.Tensor) -> torch.Tensor:
        """Prepared input state ``(..., 2^n)`` (real) of input angles ``(..., n_inputs)``.

        When all input parameters sit in the leading prep (true for amplitude-embedding students),
        this state does not depend on the weights, so a trainer can encode its whole data set once
        and call :meth:`forward_encoded` on mini-batches of it: exact, and it skips recomputing
        the embedding angles and the prep every step.
        """
        if not self.encodable:
            raise ValueError("CompiledCircuit.encode: input parameters are used after the prep "
                             "(or the prep uses weights); use forward(angles, weights)")
        lead = angles.shape[:-1]
        flat = angles.reshape(1, -1, self.n_inputs)
        t = self._tensors(flat.dtype, flat.device)
        bt = self._batch_tables(t, flat.shape[1])
        psi = self._prep_state(t, bt, flat, flat.new_zeros(1, self.n_weights))
        return _batch_major(psi).reshape(*lead, 2**self.n_qubits)

    def forward_encoded(self, encoded: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Readout ``(M, B, n_outputs)`` from prepared states ``(M, B, 2^n)`` (see :meth:`encode`)."""
        if not self.encodable:
            raise ValueError("CompiledCircuit.forward_encoded: circuit is not encodable")
        squeeze = encoded.dim() == 2 and weights.dim() == 1
        enc = encoded.unsqueeze(0) if encoded.dim() == 2 else encoded
        w = weights.unsqueeze(0) if weights.dim() == 1 else weights
        if enc.shape[0] != w.shape[0]:
            if w.shape[0] == 1:
                w = w.expand(enc.shape[0], -1)
            elif enc.shape[0] == 1:
                enc = enc.expand(w.shape[0], -1, -1)
            else:
                raise ValueError(f"forward_encoded: {enc.shape[0]} models of inputs, {w.shape[0]} of weights")
        if enc.shape[-1] != 2**self.n_qubits or w.shape[-1] != self.n_weights:
            raise ValueError(f"forward_encoded: expected states of size {2**self.n_qubits} and "
                             f"{self.n_weights} weights, got {enc.shape[-1]} and {w.shape[-1]}")
        m, b, size = enc.shape
        lo = 2**self.h
        psi0 = enc.reshape(m, b, size // lo, lo).transpose(1, 2).contiguous()
        probs, t, _ = self._probs(enc.new_zeros(m, b, 0), w, psi0=psi0)
        out = torch.matmul(probs, t.readout)
        return out[0] if squeeze else out

    def _probs(self, angles: torch.Tensor | None, weights: torch.Tensor | None,
               psi0: torch.Tensor | None = None) -> tuple[torch.Tensor, SimpleNamespace, bool]:
        psi, t, squeeze = self._run(angles, weights, psi0)
        probs = torch.view_as_real(psi).square().sum(-1) if psi.is_complex() else psi.square()
        return _batch_major(probs), t, squeeze

    def _normalise_args(self, angles: torch.Tensor | None, weights: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Shapes to (M, B, n_in) and (M, n_w); a missing side becomes an empty tensor."""
        ref = angles if angles is not None else weights
        if ref is None:
            raise ValueError("CompiledCircuit: give angles and/or weights")
        squeeze = (angles is None or angles.dim() == 2) and (weights is None or weights.dim() == 1)
        if angles is None:
            angles = weights.new_zeros(1 if weights.dim() == 1 else weights.shape[0], 1, 0)
        if weights is None:
            weights = angles.new_zeros(angles.shape[0] if angles.dim() == 3 else 1, 0)
        angles = angles.unsqueeze(0) if angles.dim() == 2 else angles
        weights = weights.unsqueeze(0) if weights.dim() == 1 else weights
        if angles.dim() != 3 or weights.dim() != 2:
            raise ValueError(f"CompiledCircuit: expected angles (M, B, n_inputs) and weights "
                             f"(M, n_weights), got {tuple(angles.shape)} and {tuple(weights.shape)}")
        if angles.shape[-1] != self.n_inputs or weights.shape[-1] != self.n_weights:
            raise ValueError(f"CompiledCircuit: expected {self.n_inputs} input angles and "
                             f"{self.n_weights} weights, got {angles.shape[-1]} and {weights.shape[-1]}")
        if angles.shape[0] != weights.shape[0]:
            if angles.shape[0] == 1:
                angles = angles.expand(weights.shape[0], -1, -1)
            elif weights.shape[0] == 1:
                weights = weights.expand(angles.shape[0], -1)
            else:
                raise ValueError(f"CompiledCircuit: {angles.shape[0]} models of angles but "
                                 f"{weights.shape[0]} of weights")
        if angles.dtype != weights.dtype or not angles.dtype.is_floating_point:
            raise ValueError(f"CompiledCircuit: angles and weights must share one floating dtype, "
                             f"got {angles.dtype} and {weights.dtype}")
        return angles, weights, squeeze

    def _run(self, angles: torch.Tensor | None, weights: torch.Tensor | None,
             psi0: torch.Tensor | None = None) -> tuple[torch.Tensor, SimpleNamespace, bool]:
        """Final state in the internal layout ``(M, A, B, L)`` (``psi0``: prepared state)."""
        if psi0 is not None:
            squeeze = False
            b = psi0.shape[2]
            angles = weights.new_zeros(weights.shape[0], b, 0)
        else:
            angles, weights, squeeze = self._normalise_args(angles, weights)
        t = self._tensors(angles.dtype, angles.device)
        bt = self._batch_tables(t, angles.shape[1])
        psi = self._prep_state(t, bt, angles, weights) if psi0 is None else psi0
        wb = self._build_group(t, t.wgroup, angles, weights, per_sample=False)
        ib = self._build_group(t, t.igroup, angles, weights, per_sample=True)
        for kind, x in t.plan:
            if kind == "mux":
                psi = self._apply_mux(psi, x, angles, weights)
            elif kind == "weight":
                psi = self._apply_stage(psi, t.wgroup.g, wb, x, bt.wgroup[x], per_sample=False)
            else:
                psi = self._apply_stage(psi, t.igroup.g, ib, x, bt.igroup[x], per_sample=True)
        return psi, t, squeeze

    # ---------------------------------------------------------------------------- pieces
    def _prep_state(self, t: SimpleNamespace, bt: SimpleNamespace, angles: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
        """Product-form prep: one gather + product over the factors (real), layout (M, A, B, L)."""
        m, b = angles.shape[0], angles.shape[1]
        consts = t.prep_consts.expand(m, b, -1)
        if t.prep_map.n:
            theta = _apply_map(t.prep_map, angles, weights, per_sample=True).expand(m, b, -1)
            consts = torch.cat([torch.cos(theta), torch.sin(theta), consts], -1)
        lo = 2**self.h
        k = t.prep_idx.shape[1]
        gathered = consts.reshape(m, -1).index_select(1, bt.prep)
        gathered = gathered.view(m, 2**self.n_qubits // lo, b, lo, k)
        return gathered[..., 0] if k == 1 else gathered.prod(-1)

    def _apply_mux(self, psi: torch.Tensor, x: SimpleNamespace, angles: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
        """General multiplexed RY on a non-fresh target (not used by the students; kept exact)."""
        m, hi, b, lo = psi.shape
        theta = _apply_map(x.map, angles, weights, per_sample=True)  # (M, B or 1, 2^k)
        c, s = torch.cos(theta)[..., x.cidx], torch.sin(theta)[..., x.cidx]
        size, tq = hi * lo, 2**x.target
        v = _batch_major(psi).reshape(m, b, size // (2 * tq), 2, tq)
        a0, a1 = v[:, :, :, 0], v[:, :, :, 1]
        c = c.reshape(m, -1, size // (2 * tq), tq)
        s = s.reshape(m, -1, size // (2 * tq), tq)
        out = torch.stack([c * a0 - s * a1, s * a0 + c * a1], 3).reshape(m, b, hi, lo)
        return out.transpose(1, 2).contiguous()

    def _build_group(self, t: SimpleNamespace, gt: SimpleNamespace | None, angles: torch.Tensor,
                     weights: torch.Tensor, per_sample: bool) -> SimpleNamespace | None:
        """Matrices of all stages of a group at once: per-qubit 2x2 -> kron (-> dense fold)."""
        if gt is None:
            return None
        g: _StageGroup = gt.g
        n, n_st = g.n, len(g.stages)
        theta = _apply_map(gt.slots, angles, weights, per_sample)  # (..., slots)
        if per_sample:
            theta = theta.expand(angles.shape[0], angles.shape[1], -1)
        lead = theta.shape[:-1]
        mats = torch.addcmul(gt.c, torch.cos(theta).unsqueeze(-1), gt.a)
        mats = torch.addcmul(mats, torch.sin(theta).unsqueeze(-1), gt.b)
        if g.is_real:
            mats = mats.view(*lead, n_st, n, g.depth, 2, 2)
        else:
            mats = torch.view_as_complex(mats.view(*lead, n_st, n, g.depth, 2, 2, 2))
        u = mats[..., 0, :, :]
        for d in range(1, g.depth):
            u = torch.matmul(mats[..., d, :, :], u)
        phase = self._group_phase(t, gt, angles, weights, per_sample, lead)
        out = SimpleNamespace(lo=None, hi=None, phase=phase, folded=False)
        out.lo = _kron_factors(u, 0, self.h) if self.h else None
        out.hi = _kron_factors(u, self.h, n) if self.h else _kron_chain(u, self.h, n)
        if self.h == 0 and not per_sample:  # dense: fold phases and permutations into the matrix
            if phase is not None:
                out.hi = phase.unsqueeze(-1) * out.hi
            if g.has_perm.any():
                out.hi = out.hi[..., gt.perm_rows, gt.src, :]
            out.folded, out.phase = True, None
        # one unbind per group instead of one select per stage: a single backward node
        axis = 2 if per_sample else 1
        out.lo = _unbind(out.lo, axis) if out.lo is not None else None
        out.hi = _unbind(out.hi, axis)
        out.phase = out.phase.unbind(axis) if out.phase is not None else None
        return out

    def _group_phase(self, t: SimpleNamespace, gt: SimpleNamespace, angles: torch.Tensor,
                     weights: torch.Tensor, per_sample: bool, lead: tuple[int, ...]) -> torch.Tensor | None:
        """Diagonal phases (..., S, 2^n): angles -> one matmul -> polar, for all stages at once."""
        g: _StageGroup = gt.g
        if not g.has_phase:
            return None
        size, n_st = 2**g.n, len(g.stages)
        if gt.diag is None:
            phi = gt.const_phase.expand(*lead, n_st, size)
        else:
            theta = _apply_map(gt.diag, angles, weights, per_sample)
            phi = torch.matmul(theta, gt.diag_pat).view(*theta.shape[:-1], n_st, size) + gt.const_phase
        if g.real:
            return torch.cos(phi)
        return torch.polar(t.one.expand_as(phi), phi)

    def _apply_stage(self, psi: torch.Tensor, g: _StageGroup, mats: SimpleNamespace, s: int,
                     perm: torch.Tensor | None, per_sample: bool) -> torch.Tensor:
        """One stage ``P . D . (K_hi (x) K_lo)`` on the state (M, A, B, L)."""
        m, hi, b, lo = psi.shape
        k_hi, phase = mats.hi[s], (mats.phase[s] if mats.phase is not None else None)
        k_lo = mats.lo[s] if mats.lo is not None else None
        if isinstance(k_hi, tuple) or isinstance(k_lo, tuple):  # a half register in two factors
            return self._apply_split(psi, g, s, perm, per_sample, k_hi, k_lo, phase)
        if (k_hi.is_complex() or (phase is not None and phase.is_complex())) and not psi.is_complex():
            psi = psi.to(complex_dtype(psi.dtype))
        if psi.is_complex() and not k_hi.is_complex():  # a real group after a complex stage
            k_hi = k_hi.to(psi.dtype)
            k_lo = k_lo.to(psi.dtype) if k_lo is not None else None
        if g.lo_used[s]:
            if per_sample:
                psi = torch.einsum("mbij,mabj->mabi", k_lo, psi)
            else:
                psi = torch.bmm(psi.reshape(m, hi * b, lo), k_lo.transpose(1, 2))
        if g.hi_used[s] or mats.folded:
            if per_sample:
                psi = torch.einsum("mbij,mjbl->mibl", k_hi, psi.reshape(m, hi, b, lo))
            else:
                psi = torch.bmm(k_hi, psi.reshape(m, hi, b * lo))
        psi = psi.reshape(m, hi, b, lo)
        if mats.folded:
            return psi
        return self._phase_perm(psi, phase, perm, per_sample)

    def _apply_split(self, psi: torch.Tensor, g: _StageGroup, s: int, perm: torch.Tensor | None,
                     per_sample: bool, k_hi: Any, k_lo: Any, phase: torch.Tensor | None) -> torch.Tensor:
        """:meth:`_apply_stage` for wide registers: each half is ``K_b (x) K_a`` (or one matrix),
        applied factor by factor on the state viewed as ``(M, A_b, A_a, B, L_b, L_a)``."""
        m, hi, b, lo = psi.shape
        k_hi = k_hi if isinstance(k_hi, tuple) else (k_hi,)
        k_lo = k_lo if isinstance(k_lo, tuple) else (k_lo,)
        if any(k.is_complex() for k in (*k_hi, *k_lo)) and not psi.is_complex():
            psi = psi.to(complex_dtype(psi.dtype))
        k_hi = tuple(k.to(psi.dtype) for k in k_hi)
        k_lo = tuple(k.to(psi.dtype) for k in k_lo)
        da = [k.shape[-1] for k in k_hi]  # low factor first
        dl = [k.shape[-1] for k in k_lo]
        x = psi.reshape(m, *(da[::-1]), b, *(dl[::-1]))
        hi_axes = list(range(1, 1 + len(da)))[::-1]  # axis of factor j (j = 0: the lowest qubits)
        b_axis = 1 + len(da)
        lo_axes = list(range(b_axis + 1, b_axis + 1 + len(dl)))[::-1]
        sub = "m" + "cdefghnopq"[: x.dim() - 1]
        for flag, factors, axes in ((g.lo_used[s], k_lo, lo_axes), (g.hi_used[s], k_hi, hi_axes)):
            if not flag:
                continue
            for k, ax in zip(factors, axes):
                out_sub = sub[:ax] + "z" + sub[ax + 1:]
                mat = ("m" + sub[b_axis] + "z" + sub[ax]) if per_sample else ("mz" + sub[ax])
                x = torch.einsum(f"{mat},{sub}->{out_sub}", k, x)
        return self._phase_perm(x.reshape(m, hi, b, lo), phase, perm, per_sample)

    @staticmethod
    def _phase_perm(psi: torch.Tensor, phase: torch.Tensor | None, perm: torch.Tensor | None,
                    per_sample: bool) -> torch.Tensor:
        """The diagonal and permutation parts of a stage, on the state ``(M, A, B, L)``."""
        m, hi, b, lo = psi.shape
        if phase is not None:
            ph = phase.reshape(m, -1, hi, lo).transpose(1, 2) if per_sample else phase.reshape(m, hi, 1, lo)
            psi = psi * ph
        if perm is not None:  # gather is several times faster than index_select along dim 1
            psi = torch.gather(psi.reshape(m, -1), 1, perm.expand(m, -1)).reshape(m, hi, b, lo)
        return psi


def _batch_major(x: torch.Tensor) -> torch.Tensor:
    """(M, A, B, L) -> (M, B, A*L): the public (model, sample, basis index) layout."""
    m, hi, b, lo = x.shape[:4]
    return x.transpose(1, 2).reshape(m, b, hi * lo, *x.shape[4:])


def _map_t(amap: _AffineMap, f: Any, i: Any) -> SimpleNamespace:
    """Torch form of an :class:`_AffineMap`."""
    def part(kind: str | None, data: Any) -> Any:
        if kind == "dense":
            return f(data)
        if kind == "select":
            return i(data[0]), f(data[1])
        return None

    return SimpleNamespace(n=amap.n_slots, in_kind=amap.in_kind, in_data=part(amap.in_kind, amap.in_data),
                           w_kind=amap.w_kind, w_data=part(amap.w_kind, amap.w_data),
                           off=f(amap.offset), has_off=bool(np.any(amap.offset)), scale=amap.scale)


def _apply_map(mp: SimpleNamespace, angles: torch.Tensor, weights: torch.Tensor,
               per_sample: bool) -> torch.Tensor:
    """Slot angles: (M, B, S) if per_sample (B may be 1 when no input is involved) else (M, S)."""
    out = None
    if mp.w_kind == "dense":
        out = torch.addmm(mp.off, weights, mp.w_data) if mp.has_off else torch.mm(weights, mp.w_data)
    elif mp.w_kind == "select":
        out = torch.addcmul(mp.off, weights.index_select(1, mp.w_data[0]), mp.w_data[1])
    if per_sample and out is not None:
        out = out.unsqueeze(1)
    if mp.in_kind is not None:
        if not per_sample:
            raise AssertionError("a per-model stage group depends on inputs")
        if mp.in_kind == "ident":
            part = angles[..., :mp.n] * mp.scale
        elif mp.in_kind == "dense":
            part = torch.matmul(angles, mp.in_data)
        else:
            part = angles.index_select(2, mp.in_data[0]) * mp.in_data[1]
        if out is not None:
            out = part + out
        else:
            out = part + mp.off if mp.has_off else part
    if out is None:
        shape = (angles.shape[0], 1, mp.n) if per_sample else (weights.shape[0], mp.n)
        out = mp.off.expand(shape)
    return out


def _group_t(g: _StageGroup | None, f: Any, i: Any) -> SimpleNamespace | None:
    """Torch form of a :class:`_StageGroup`."""
    if g is None:
        return None
    abc = g.abc[:, :, 0::2] if g.is_real else g.abc
    return SimpleNamespace(
        g=g, slots=_map_t(g.slots, f, i), a=f(abc[0]), b=f(abc[1]), c=f(abc[2]),
        diag=None if g.diag is None else _map_t(g.diag, f, i),
        diag_pat=None if g.diag_pat is None else f(g.diag_pat),
        const_phase=f(g.const_phase), src=i(g.src), perm_rows=i(np.arange(len(g.stages))[:, None]),
    )

def _kron_factors(u: torch.Tensor, start: int, stop: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``_kron_chain`` of qubits ``[start, stop)``, or for more than ``FACTOR_MAX_QUBITS`` of them
    the two factors ``(K_a, K_b)`` (low qubits first) whose Kronecker product it is."""
    if stop - start <= FACTOR_MAX_QUBITS:
        return _kron_chain(u, start, stop)
    mid = start + (stop - start + 1) // 2
    return _kron_chain(u, start, mid), _kron_chain(u, mid, stop)


def _unbind(k: torch.Tensor | tuple[torch.Tensor, ...], axis: int) -> Any:
    """Per-stage matrices of a group: a list of tensors, or of factor tuples for split halves."""
    if isinstance(k, tuple):
        return list(zip(*(f.unbind(axis) for f in k)))
    return k.unbind(axis)


def _kron_chain(u: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``u[..., stop-1] (x) ... (x) u[..., start]`` for per-qubit matrices ``u (..., n, 2, 2)``.

    Each step is a batched outer product done as a matmul ``(4 x 1) @ (1 x d^2)`` plus one
    reshuffle: much faster (forward and backward) than a broadcast multiply over tiny trailing
    dimensions, whose backward is a strided reduction.
    """
    k = u[..., start, :, :]
    for q in range(start + 1, stop):
        a = u[..., q, :, :]
        d, lead = k.shape[-1], k.shape[:-2]
        outer = torch.matmul(a.reshape(*lead, 4, 1), k.reshape(*lead, 1, d * d))
        k = outer.reshape(*lead, 2, 2, d, d).transpose(-3, -2).reshape(*lead, 2 * d, 2 * d)
    return k


# --------------------------------------------------------------------------------------------------
# Public constructors
# --------------------------------------------------------------------------------------------------


_COMPILED: dict[tuple, tuple[weakref.ref, CompiledCircuit]] = {}


def compile_circuit(circuit: QuantumCircuit, input_params: Sequence[Parameter] = (),
                    weight_params: Sequence[Parameter] = (), readout_qubits: Sequence[int] | None = None,
                    readout: Literal["z", "probs"] = "z", mode: Mode = "auto",
                    cache: bool = True) -> CompiledCircuit:
    """Compile ``circuit`` once for exact simulation (cached by circuit identity).

    ``readout="z"`` returns <Z_q> per readout qubit (default all qubits); ``"probs"`` the
    ``2^k`` outcome probabilities of the readout qubits, index ``sum_j bit(readout_qubits[j]) << j``.
    """
    key = (id(circuit), tuple(input_params), tuple(weight_params),
           None if readout_qubits is None else tuple(readout_qubits), readout, mode)
    hit = _COMPILED.get(key) if cache else None
    if hit is not None and hit[0]() is circuit:
        return hit[1]
    prog = CompiledCircuit(circuit, input_params, weight_params, readout_qubits, readout, mode)
    if cache:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[key] = (weakref.ref(circuit), prog)
    return prog


def compile_student(student: Any, mode: Mode = "auto") -> CompiledCircuit:
    """Compile a :class:`~qkd_qiskit.circuits.StudentCircuit` (its circuit, params and readout)."""
    return compile_circuit(student.circuit, student.input_params, student.weight_params,
                           student.readout_qubits, student.readout, mode)


class QuantumLayer(nn.Module):
    """``M`` independent copies of a student circuit: raw features (M, B, F) -> readout (M, B, n_out).

    ``weights`` is one Parameter (M, n_weights); model m is initialised uniformly in [0, 2 pi) from
    ``generators[m]`` alone (drawn in float64 on CPU, then cast), so its initial weights do not
    depend on the other models nor on the layer's dtype beyond rounding.
    """

    def __init__(self, student: Any, n_models: int = 1, generators: Sequence[torch.Generator] | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 mode: Mode = "auto"):
        super().__init__()
        if generators is not None and len(generators) != n_models:
            raise ValueError(f"QuantumLayer: {len(generators)} generators for {n_models} models")
        self.student = student
        self.program = compile_student(student, mode)
        n_w = self.program.n_weights
        gens = list(generators) if generators is not None else [None] * n_models
        init = torch.stack([torch.rand(n_w, generator=g, dtype=torch.float64) for g in gens]) * (2 * math.pi)
        self.weights = nn.Parameter(init.to(dtype=dtype, device=device))

    @property
    def n_models(self) -> int:
        return self.weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.program.n_outputs

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """Input angles (M, B, n_inputs) of raw features (M, B, F), via ``student.input_angles``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=self.weights.dtype, device=self.weights.device)
        if x.dim() != 3 or x.shape[0] != self.n_models:
            raise ValueError(f"QuantumLayer: expected features (M={self.n_models}, B, F), got {tuple(x.shape)}")
        m, b, f = x.shape
        a = self.student.input_angles(x.reshape(m * b, f).to(self.weights.dtype))
        return a.reshape(m, b, -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input states ``(..., 2^n)`` of raw features ``(..., F)``, independent of the
        weights: encode a data set once, then train with ``layer(encoded=enc[idx])``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=self.weights.dtype, device=self.weights.device)
        lead, f = x.shape[:-1], x.shape[-1]
        angles = self.student.input_angles(x.reshape(-1, f).to(self.weights.dtype))
        return self.program.encode(angles).reshape(*lead, -1)

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Readout (M, B, n_outputs) of raw features ``x`` (M, B, F) or of ``encoded`` states."""
        if encoded is not None:
            return self.program.forward_encoded(encoded, self.weights)
        return self.program(self.angles(x), self.weights)
