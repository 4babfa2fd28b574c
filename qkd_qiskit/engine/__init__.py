"""Exact, batched, differentiable simulation of parameterised Qiskit circuits in torch.

The :class:`~qiskit.circuit.QuantumCircuit` is the single source of truth: :func:`compile_circuit`
reads its gates (recursing into gate definitions it does not know), extracts every angle as an
affine function of the input and weight parameters, and compiles the circuit once into a short
list of fused tensor operations. Training cost is then dominated by a handful of batched matmuls
instead of one torch op per gate: a 6-qubit step of one model takes well under a millisecond.

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
* **readout**: ``|amp|^2`` times a constant sign (``"z"``) or marginalisation (``"probs"``) matrix
  (:func:`qkd_qiskit.readout.readout_table`).

**Fused chain** (:mod:`.fused`, the default on CPU when every stage is a weight stage: all
amplitude-embedding students): the stages, ``|psi|^2`` and the read-out run as ONE autograd node
whose forward and hand-derived backward are machine code compiled by numba
(:mod:`.fused_kernels`): per-qubit matrices, their Kronecker products per half register, each
half-register matmul as one real BLAS product on stacked real/imaginary states, phases and
permutations, in a reused workspace. In eager torch the 6-qubit step was ~380 small ops and
dispatch-bound; fused, one model's training step is ~3.5x faster and 24 models' ~1.7-1.9x
(``docs/engine_speed.md``). Circuits with per-sample stages or multiplexers after the prep, CUDA
tensors, and :func:`unfused` blocks take the eager path below; both match Qiskit's
``Statevector`` to rounding.

Eager path: per-qubit matrices are Kronecker-multiplied into each half register by one gather +
product (:func:`~.kron.kron_gather`, ~1.1x on the 6-qubit training step). A hand-written backward
in torch for the stage chain (one autograd node for all stages), ``torch.compile`` (inductor
generates no code for complex tensors: 3x slower) and fused Adam were measured too, and so was
fusing all weight stages into one ``2^n x 2^n`` unitary per model (1.3x slower at 6 qubits for one
model, 2.9x for 24: the 64x64 products cost 8x the arithmetic of the factored stages).

Mid-circuit measurements are handled exactly by deferred measurement: a measured qubit must never
be acted on again (checked at compile time), so its outcome equals its final computational-basis
value and summing probabilities over it marginalises it.

Everything is vectorised over ``M`` independent models, each with its own weights and its own
mini-batch: ``forward(angles (M, B, n_inputs), weights (M, n_weights)) -> (M, B, n_outputs)``.

Modules, in pipeline order: :mod:`.settings` (modes, size limits, dtypes); :mod:`.atoms` and
:mod:`.reader` (circuit -> atoms); :mod:`.prep` and :mod:`.schedule` (atoms -> prep and stages);
:mod:`.layout`, :mod:`.angle_maps`, :mod:`.stage_group`, :mod:`.mux` and :mod:`.program`
(compile-time tables); :mod:`.tables` (their torch form); :mod:`.kron`, :mod:`.stage_matrices`
and :mod:`.stage_apply` (eager run time); :mod:`.fused` and :mod:`.fused_kernels` (the fused
chain); :mod:`.arguments` and :mod:`.compiled` (the executor
:class:`CompiledCircuit`); :mod:`.compiler` (:func:`compile_circuit`, :func:`compile_student`);
:mod:`.layer` (the torch module :class:`QuantumLayer`).

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

from .compiled import CompiledCircuit
from .compiler import compile_circuit, compile_student
from .fused import unfused
from .layer import QuantumLayer
from .settings import DENSE_MAX_QUBITS, FACTOR_MAX_QUBITS, Mode, complex_dtype

__all__ = [
    "DENSE_MAX_QUBITS",
    "FACTOR_MAX_QUBITS",
    "CompiledCircuit",
    "Mode",
    "QuantumLayer",
    "compile_circuit",
    "compile_student",
    "complex_dtype",
    "unfused",
]
