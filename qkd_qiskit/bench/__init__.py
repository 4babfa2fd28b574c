"""Side-by-side timing of the exact torch engine against the other ways to train the same student.

``run_bench`` (called by ``qkd bench [--json] [--quick]``) measures in one process, on the
6-qubit amplitude-embedding + 5-layer HEA student with 6 <Z> readouts and a linear head,
batch 32, one optimiser step = zero_grad + forward + cross-entropy + backward + Adam step:

* this engine, one model, from raw features (embedding angles computed every step) and from
  pre-encoded inputs (``QuantumLayer.encode`` once per data set);
* this engine, 12 models (seeds) batched, each with its own mini-batch, reported per model;
* ``TorchConnector(EstimatorQNN)`` with this package's estimator + gradient (float64, and float32);
* stock qiskit-machine-learning: ``TorchConnector(EstimatorQNN)`` with ``StatevectorEstimator``
  and the default parameter-shift gradient (a small batch, reported per sample);
* Aer ``EstimatorV2`` with parameter shift (small batch, per sample);
* PennyLane ``default.qubit`` backprop and ``lightning.qubit`` adjoint through ``qml.qnn.TorchLayer``
  (AmplitudeEmbedding + the same HEA gates), PennyLane + JAX with the whole step under ``jax.jit``
  (:mod:`.pennylane_jax`) and TensorCircuit-NG with JAX jit + vmap, for one model and vmapped over
  24 (:mod:`.tensorcircuit`), each when installed (``pip install 'qkd-qiskit[bench]'``) and
  checked against the engine's read-outs first; compile times apart (:mod:`.jax_step`).

It compares the engine with the fastest peer per step and per 300-epoch run, compile included
(:mod:`.peers`), and reports the arithmetic floor: FLOPs per step and the fraction of it each path
reaches (:mod:`.floor`). :mod:`.load` times the thread policy of ``qkd run`` under load
(``benchmarks/bench_threads.py``).

It also prints a scaling table (engine step time and memory vs qubits 4..14, factored vs dense
fused unitaries) and the cost of a 300-epoch run per model with 12 seeds batched.

Example:
    >>> result = run_bench(quick=True)          # doctest: +SKIP
    >>> result["steps"]["engine_1"]["median_ms"] < result["steps"]["pennylane"]["median_ms"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

from .run import run_bench

__all__ = ["run_bench"]
