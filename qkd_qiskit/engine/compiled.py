"""The compiled-circuit executor: :class:`CompiledCircuit` runs a circuit's compiled program.

Construction validates the arguments, reads the circuit (:mod:`.reader`) and builds its
compile-time tables (:mod:`.program`); a call normalises the argument shapes (:mod:`.arguments`),
fetches the torch tables (:mod:`.tables`), computes the prep (:mod:`.prep`) and each stage
group's matrices (:mod:`.stage_matrices`), and applies the stages and mux ops in order
(:mod:`.stage_apply`, :mod:`.mux`).

Example:
    >>> import torch
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> w = Parameter("w")
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.rx(w, 0)
    >>> prog = CompiledCircuit(qc, [], [w], readout="probs")
    >>> prog(None, torch.tensor([torch.pi / 2], dtype=torch.float64)).tolist()    # RX(pi/2)|0>
    [[0.5000000000000001, 0.4999999999999999]]
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Literal, Sequence

import torch
from qiskit.circuit import Parameter, QuantumCircuit

from .arguments import normalise_args, normalise_encoded
from .fused import enabled, fused_readout, fused_tables, step_tables, usable
from .layout import batch_major, internal
from .mux import apply_mux
from .prep import prep_state
from .program import Program
from .reader import ParamIndex, read_atoms
from .settings import DENSE_MAX_QUBITS, MODES, Mode, complex_dtype
from .stage_apply import apply_stage
from .angle_maps import apply_map
from .stage_matrices import group_matrices, group_phase
from .tables import TorchTables

__all__ = ["CompiledCircuit"]


class CompiledCircuit:
    """A circuit compiled for exact batched simulation; call it like a function.

    ``program(angles, weights)``: ``angles`` (M, B, n_inputs) and ``weights`` (M, n_weights) (or
    (B, n_inputs) and (n_weights,) for one model) -> readout (M, B, n_outputs) (or (B, n_outputs)).
    Use :meth:`state` for the final statevector and :meth:`probabilities` for all 2^n outcomes.

    Internally the state is kept as ``(M, A, B, L)`` with ``A = 2^(n-h)`` (high qubits),
    ``L = 2^h`` (low qubits) and the batch in the middle: a tensor product ``K_hi (x) K_lo`` then
    acts as two plain ``bmm`` calls with no copies, and a basis permutation is one
    ``gather``. ``h = n // 2`` in factored mode; ``h = 0`` is dense mode (one
    ``2^n x 2^n`` matrix per stage, with phases and permutations folded in).
    """

    def __init__(self, circuit: QuantumCircuit, input_params: Sequence[Parameter],
                 weight_params: Sequence[Parameter], readout_qubits: Sequence[int] | None = None,
                 readout: Literal["z", "probs"] = "z", mode: Mode = "auto"):
        if readout not in ("z", "probs"):
            raise ValueError(f"compile_circuit: readout must be 'z' or 'probs', got {readout!r}")
        if mode not in MODES:
            raise ValueError(f"compile_circuit: mode must be auto, dense or factored, got {mode!r}")
        self.n_qubits = circuit.num_qubits
        self.n_clbits = circuit.num_clbits
        self.input_params = tuple(input_params)
        self.weight_params = tuple(weight_params)
        self.n_inputs, self.n_weights = len(self.input_params), len(self.weight_params)
        pidx = ParamIndex(self.input_params, self.weight_params)
        pidx.require_all(circuit)
        self.readout = readout
        self.readout_qubits = tuple(range(self.n_qubits) if readout_qubits is None else readout_qubits)
        if any(not 0 <= q < self.n_qubits for q in self.readout_qubits):
            raise ValueError(f"compile_circuit: readout qubits {self.readout_qubits} out of range")
        self.dense = mode == "dense" or (mode == "auto" and self.n_qubits <= DENSE_MAX_QUBITS)
        self.mode = "dense" if self.dense else "factored"
        self.h = 0 if self.dense else self.n_qubits // 2
        program = Program.build(read_atoms(circuit, pidx), self.n_qubits, self.n_inputs, self.n_weights,
                                self.h, readout, self.readout_qubits)
        self.clbit_qubits, self.n_stages = program.clbit_qubits, program.n_stages
        self.encodable = program.encodable
        self.n_outputs = program.readout.shape[1]
        self._tables = TorchTables(program, self.n_qubits, self.h)
        self._fused_tables: dict[tuple[torch.dtype, torch.device], SimpleNamespace | None] = {}

    def step_flops(self, batch: int, models: int = 1) -> int:
        """Real floating-point operations of one forward + backward of ``models`` x ``batch`` states.

        Counts the arithmetic the stages cannot avoid: each half-register matmul (a complex
        multiply-add is 8 real flops; 2 for a real group), each diagonal phase, ``|psi|^2`` and
        the read-out; the backward does two matmuls per forward matmul (state and matrix
        gradients), so a step is 3x the forward. Building the stage matrices (a few hundred
        2x2 products) and the prep are left out: they are below 1 % at 6 qubits.

        >>> import torch
        >>> from qiskit import QuantumCircuit
        >>> from qiskit.circuit import Parameter
        >>> qc = QuantumCircuit(1)
        >>> _ = qc.rx(Parameter("w"), 0)
        >>> CompiledCircuit(qc, [], qc.parameters).step_flops(batch=1)   # 3 x (2x2 complex matvec 32, |psi|^2 6, <Z> 4)
        126
        """
        program, size = self._tables.program, 2**self.n_qubits
        hi, lo = size // 2**self.h, 2**self.h
        fwd = 0
        for kind, x in program.plan:
            if kind == "mux":
                fwd += 8 * size * batch
                continue
            g = program.wgroup if kind == "weight" else program.igroup
            mac = 2 if g.real else 8
            if self.dense:
                fwd += mac * size * size * batch
                continue
            fwd += mac * hi * batch * lo * lo * bool(g.lo_used[x]) + mac * hi * hi * batch * lo * bool(g.hi_used[x])
            fwd += 6 * size * batch * bool(g.has_phase)
        fwd += 3 * size * batch + 2 * size * batch * self.n_outputs
        return 3 * fwd * models

    def __call__(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        return self.forward(angles, weights)

    def forward(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """Readout ``(M, B, n_outputs)``: <Z> per readout qubit, or outcome probabilities."""
        fused = self._fused(angles, weights, None, readout=True)
        if fused is not None:
            return fused[0][0] if fused[1] else fused[0]
        probs, t, squeeze = self._probs(angles, weights)
        out = torch.matmul(probs, t.readout)
        return out[0] if squeeze else out

    def probabilities(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """All ``2^n`` basis-state probabilities, ``(M, B, 2^n)``."""
        fused = self._fused(angles, weights, None, readout=False)
        if fused is not None:
            return fused[0][0] if fused[1] else fused[0]
        probs, _, squeeze = self._probs(angles, weights)
        return probs[0] if squeeze else probs

    def state(self, angles: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """Final statevector ``(M, B, 2^n)`` (complex; basis index little-endian as in Qiskit).

        Exact up to a global phase: global phases of gates (``u``, ``p``) and of gate definitions
        are not tracked, since no readout, probability or expectation value depends on them."""
        psi, _, squeeze = self._run(angles, weights)
        psi = psi if psi.is_complex() else psi.to(complex_dtype(psi.dtype))
        out = batch_major(psi)
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
        t = self._tables.tensors(flat.dtype, flat.device)
        bt = self._tables.batch(t, flat.shape[1])
        psi = prep_state(t, bt, flat, flat.new_zeros(1, self.n_weights), self.n_qubits, self.h)
        return batch_major(psi).reshape(*lead, 2**self.n_qubits)

    def forward_encoded(self, encoded: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Readout ``(M, B, n_outputs)`` from prepared states ``(M, B, 2^n)`` (see :meth:`encode`)."""
        if not self.encodable:
            raise ValueError("CompiledCircuit.forward_encoded: circuit is not encodable")
        enc, w, squeeze = normalise_encoded(encoded, weights, 2**self.n_qubits, self.n_weights)
        fused = self._fused(None, w, enc, readout=True)
        if fused is not None:
            return fused[0][0] if squeeze else fused[0]
        m, b, _ = enc.shape
        probs, t, _ = self._probs(enc.new_zeros(m, b, 0), w, psi0=internal(enc, self.h))
        out = torch.matmul(probs, t.readout)
        return out[0] if squeeze else out

    def _probs(self, angles: torch.Tensor | None, weights: torch.Tensor | None,
               psi0: torch.Tensor | None = None) -> tuple[torch.Tensor, SimpleNamespace, bool]:
        psi, t, squeeze = self._run(angles, weights, psi0)
        # psi * conj(psi): bitwise the same as view_as_real(psi).square().sum(-1), whose backward
        # (a pow of a strided view, a broadcast sum) took 2x as long at 24 models (docs/engine_speed.md)
        probs = (psi * psi.conj()).real if psi.is_complex() else psi.square()
        return batch_major(probs), t, squeeze

    def fused_step_tables(self, dtype: torch.dtype) -> SimpleNamespace | None:
        """The fused chain's tables with the weight -> angle maps as dense arrays
        (:func:`~.fused.step_tables`), for code that runs whole training steps of encoded inputs in
        compiled code (``qkd_qiskit.train_step``); None where the fused chain does not apply on CPU
        or the circuit is not encodable."""
        prog = self._tables.program
        if not (self.encodable and enabled() and usable(prog.plan, prog.wgroup, dtype, torch.device("cpu"))):
            return None
        return step_tables(prog.wgroup, prog.readout, dtype, self.n_weights)

    def _fused(self, angles: torch.Tensor | None, weights: torch.Tensor | None, encoded: torch.Tensor | None,
               readout: bool) -> tuple[torch.Tensor, bool] | None:
        """Read-out (or all probabilities) ``(M, B, n)`` and ``squeeze`` by the fused chain
        (:mod:`.fused`) from ``encoded`` states ``(M, B, 2^n)`` or from angles; None where the
        fused chain does not apply."""
        if not isinstance(weights, torch.Tensor) or not enabled():
            return None
        key = (weights.dtype, weights.device)
        if key not in self._fused_tables:  # whether it applies, and its tables, once per dtype/device
            prog = self._tables.program
            ok = usable(prog.plan, prog.wgroup, *key)
            self._fused_tables[key] = fused_tables(prog.wgroup, prog.readout, weights.dtype) if ok else None
        tables = self._fused_tables[key]
        if tables is None:
            return None
        if encoded is not None:
            squeeze = False
        else:
            angles, weights, squeeze = normalise_args(angles, weights, self.n_inputs, self.n_weights)
        t = self._tables.tensors(weights.dtype, weights.device)
        if encoded is None:
            encoded = batch_major(prep_state(t, self._tables.batch(t, angles.shape[1]), angles, weights,
                                             self.n_qubits, self.h))
        gt = t.wgroup
        theta = apply_map(gt.slots, None, weights, per_sample=False)  # weight groups read no inputs
        phase = group_phase(t, gt, None, weights, per_sample=False, lead=theta.shape[:-1])
        return fused_readout(tables, theta, phase, encoded, all_probs=not readout), squeeze

    def _run(self, angles: torch.Tensor | None, weights: torch.Tensor | None,
             psi0: torch.Tensor | None = None) -> tuple[torch.Tensor, SimpleNamespace, bool]:
        """Final state in the internal layout ``(M, A, B, L)`` (``psi0``: prepared state)."""
        if psi0 is not None:
            squeeze = False
            b = psi0.shape[2]
            angles = weights.new_zeros(weights.shape[0], b, 0)
        else:
            angles, weights, squeeze = normalise_args(angles, weights, self.n_inputs, self.n_weights)
        t = self._tables.tensors(angles.dtype, angles.device)
        bt = self._tables.batch(t, angles.shape[1])
        psi = prep_state(t, bt, angles, weights, self.n_qubits, self.h) if psi0 is None else psi0
        wb = group_matrices(t, t.wgroup, angles, weights, per_sample=False, h=self.h)
        ib = group_matrices(t, t.igroup, angles, weights, per_sample=True, h=self.h)
        for kind, x in t.plan:
            if kind == "mux":
                psi = apply_mux(psi, x, angles, weights)
            elif kind == "weight":
                psi = apply_stage(psi, t.wgroup.g, wb, x, bt.wgroup[x], per_sample=False)
            else:
                psi = apply_stage(psi, t.igroup.g, ib, x, bt.igroup[x], per_sample=True)
        return psi, t, squeeze
