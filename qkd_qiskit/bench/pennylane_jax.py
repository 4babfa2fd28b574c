"""PennyLane ``default.qubit`` with JAX: the whole benchmark step under ``jax.jit`` (optax Adam).

The qnode runs the Qiskit circuit's own ansatz gates (:func:`~.pennylane.pennylane_ops`) after
``AmplitudeEmbedding`` and broadcasts over the batch; backprop through JAX. Its read-outs are
checked against the engine on the engine's weights before timing.
"""

from __future__ import annotations

from typing import Any, Callable

from .jax_step import JAX_PEERS, engine_reference, jax_timing, max_diff, missing_peer
from .pennylane import pennylane_ops


def pennylane_jax_expvals(student: Any) -> Callable[[Any, Any], Any]:
    """``f(x (B, 2^n) raw features, w) -> (B, n_readouts)`` <Z> of the student in PennyLane + JAX."""
    import jax.numpy as jnp
    import pennylane as qml

    n = student.n_qubits
    ops = pennylane_ops(student)
    gates = {"ry": qml.RY, "rz": qml.RZ, "rx": qml.RX, "cx": qml.CNOT, "h": qml.Hadamard, "rzz": qml.IsingZZ}

    @qml.qnode(qml.device("default.qubit", wires=n), interface="jax", diff_method="backprop")
    def circuit(inputs: Any, weights: Any) -> list:
        qml.AmplitudeEmbedding(inputs, wires=range(n), normalize=True, pad_with=0.0)
        for name, wires, j in ops:
            gates[name](*(() if j is None else (weights[j],)), wires=wires)
        return [qml.expval(qml.PauliZ(n - 1 - q)) for q in student.readout_qubits]

    return lambda x, w: jnp.stack(circuit(x, w), axis=-1)


def bench_pennylane_jax(student: Any, quick: bool, models: tuple[int, ...] = (1,)) -> dict:
    """``pennylane_jax`` (and ``pennylane_jax_<M>`` for ``M > 1``, vmapped over models), or a skip reason."""
    names = {m: "pennylane_jax" if m == 1 else f"pennylane_jax_{m}" for m in models}
    why = missing_peer(*JAX_PEERS, "pennylane")
    if why:
        return {name: {"skipped": why} for name in names.values()}
    import pennylane as qml

    expvals = pennylane_jax_expvals(student)
    out = {}
    for m, name in names.items():
        weights, x, ref = engine_reference(student, m)
        res = jax_timing(expvals, weights, m, quick)
        res.update(version=qml.__version__, max_abs_diff_vs_engine=max_diff(expvals, weights, x, ref))
        out[name] = res
    return out
