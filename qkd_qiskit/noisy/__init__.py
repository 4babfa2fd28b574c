"""Noise-aware training: exact, differentiable density-matrix simulation of a student's ISA circuit
under a device's Aer noise model, batched over models and samples (student option ``noise``).

What is simulated is exactly what ``qkd evaluate`` runs on an ``aer`` profile: the student's circuit
transpiled to the device ISA, cut down to its active qubits, with the noise model restricted to
them (:meth:`qkd_qiskit.backends.AerBackend.compacted`): every gate's Aer ``QuantumError`` (for
device models: depolarising plus thermal relaxation) after the gate, read-out errors on the
read-out bits, mid-circuit measurements of q_nd students deferred (exact: a measured qubit is
never reused). The expectation values agree with Aer's density-matrix simulation to ~1e-9
(tests/noisy); shot noise is not simulated (the trainer sees expectation values).

How (measured on the 6-qubit hea student, FakeKingston, 24 models x batch 32, 1 thread, with the
2-core machine shared by other jobs):

* **Pauli transfer matrices** (:mod:`.ptm`, :mod:`.channels`): states are Pauli vectors (``4^k``
  reals), every gate-plus-error a real matrix read from Qiskit / Aer's public APIs; trainable
  ``rz`` angles enter as ``B + cos C + sin S``.
* **Input part once** (:mod:`.split`, :mod:`.embedding`): a barrier between embedding and ansatz
  (:mod:`.barrier`) keeps the transpiler from mixing input and weight gates, so the ISA circuit
  splits into a weight-free input part (142 of the 201 ``cz``) simulated once per data split, like
  the engine's ``encode``; here in torch with the same blocks (800 samples ~14 s on the loaded
  machine; Aer's own density-matrix run of the same part, the test oracle, took 96 s).
* **Heisenberg picture** (:mod:`.program`): the few read-out observables are propagated backwards
  through the weight part once per model, then each sample is one dot product, so a step costs
  ``M K`` propagated vectors instead of ``M B`` states (5x fewer for K = 6, B = 32); a linear head is
  folded into the observables (``K`` = 3 classes instead of 6 read-outs: 2x).
* **Fusion** (:mod:`.blocks`): channels fused into two-qubit blocks (59 ``cz`` of the weight part
  -> 34 blocks), each applied as one batched 16x16 matmul after one permute (einsum's two copies per
  block: 1.6x slower).

Step cost (``benchmarks/bench_noise_training.py``): see docs/noise_training.md.

The same machinery evaluates trained students on ``aer`` profiles (:mod:`.sampled`, used by ``qkd
evaluate`` / ``qkd calibrate``): the exact noisy read-out distribution of the ISA circuit, then the
Aer path's seeded shots; 7-11x faster than Aer's density-matrix run for exact-trained students,
50-150x for noise-aware ones (``benchmarks/bench_ptm_eval.py``).

Example:
    >>> from qkd_qiskit.backends import AerProfile, get_backend
    >>> from qkd_qiskit.circuits import build_student
    >>> import numpy as np, torch
    >>> manila = get_backend(AerProfile(kind="aer", device="fake_manila", name="manila"))  # 5 qubits: quick
    >>> st = barrier_student(build_student("q2", n_qubits=3, layers=1))
    >>> sim = NoisySimulator(st, manila, torch.float64)
    >>> states = torch.as_tensor(sim.states(st.input_angles(np.eye(8)[:2] + 0.1)))[None]
    >>> probs = sim.readouts(states, torch.zeros(1, len(st.weight_params), dtype=torch.float64))
    >>> probs.shape, bool(torch.allclose(probs.sum(-1), torch.ones(1, 2, dtype=torch.float64)))
    (torch.Size([1, 2, 4]), True)
"""

from __future__ import annotations

from .barrier import barrier_student
from .sampled import PtmSampler, ptm_sampler, sampled_readouts
from .simulator import NoisySimulator

__all__ = ["NoisySimulator", "PtmSampler", "barrier_student", "ptm_sampler", "sampled_readouts"]
