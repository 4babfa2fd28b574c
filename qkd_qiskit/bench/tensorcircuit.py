"""TensorCircuit-NG on JAX: the benchmark step under ``jax.jit``, the circuit ``jax.vmap``-ed over the batch.

One sample's circuit (its normalised features as the input state, then the Qiskit circuit's own
ansatz gates, :func:`~.pennylane.pennylane_ops`; TensorCircuit numbers wires big-endian as
PennyLane does) is vmapped over the mini-batch and, for ``M`` models, the loss over models
(:func:`~.jax_step.jax_timing`). Its read-outs are checked against the engine before timing.
"""

from __future__ import annotations

from typing import Any, Callable

from .jax_step import JAX_PEERS, engine_reference, jax_timing, max_diff, missing_peer
from .pennylane import pennylane_ops


def tensorcircuit_expvals(student: Any) -> Callable[[Any, Any], Any]:
    """``f(x (B, 2^n) raw features, w) -> (B, n_readouts)`` <Z> of the student in TensorCircuit-NG."""
    import jax
    import jax.numpy as jnp
    import tensorcircuit as tc

    tc.set_backend("jax")
    tc.set_dtype("complex64")
    n = student.n_qubits
    ops = pennylane_ops(student)
    one_q = {"ry": "ry", "rz": "rz", "rx": "rx", "h": "h"}

    def one(x: Any, w: Any) -> Any:
        c = tc.Circuit(n, inputs=(x / jnp.linalg.norm(x)).astype(jnp.complex64))
        for name, wires, j in ops:
            if name == "cx":
                c.cnot(*wires)
            elif name == "rzz":
                c.rzz(*wires, theta=w[j])
            elif j is None:
                getattr(c, one_q[name])(*wires)
            else:
                getattr(c, one_q[name])(*wires, theta=w[j])
        return jnp.stack([jnp.real(c.expectation_ps(z=[n - 1 - q])) for q in student.readout_qubits])

    return jax.vmap(one, in_axes=(0, None))


def bench_tensorcircuit(student: Any, quick: bool, models: tuple[int, ...] = (1,)) -> dict:
    """``tensorcircuit`` (and ``tensorcircuit_<M>`` for ``M > 1``, vmapped over models), or a skip reason."""
    names = {m: "tensorcircuit" if m == 1 else f"tensorcircuit_{m}" for m in models}
    why = missing_peer(*JAX_PEERS, "tensorcircuit")
    if why:
        return {name: {"skipped": why} for name in names.values()}
    import tensorcircuit as tc

    expvals = tensorcircuit_expvals(student)
    out = {}
    for m, name in names.items():
        weights, x, ref = engine_reference(student, m)
        res = jax_timing(expvals, weights, m, quick)
        res.update(version=tc.__version__, max_abs_diff_vs_engine=max_diff(expvals, weights, x, ref))
        out[name] = res
    return out
