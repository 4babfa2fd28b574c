"""The benchmark step in JAX, shared by the JAX-compiled peers (PennyLane + JAX, TensorCircuit-NG).

The whole step (mini-batch draw, forward, cross-entropy, backward, optax Adam) is one
``jax.jit`` function, so what is timed is XLA's compiled step, not Python dispatch; for ``M``
models the per-model loss is ``jax.vmap``-ed over stacked parameters and mini-batches (one Adam
over the stack is ``M`` Adams: Adam is element-wise). Compile time (trace + XLA compile + the
first step) is measured apart from the step. JAX is imported only here, when a peer is run.

Example:
    >>> import numpy as np
    >>> run = jax_timing(lambda xb, w: xb[:, :6] * w[:6], np.zeros(72, np.float32), 1, quick=True)  # doctest: +SKIP
    >>> sorted(run)                                                                                # doctest: +SKIP
    ['compile_s', 'median_ms', 'min_ms', 'models', 'per_model_ms', 'per_sample_ms', 'reps']
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from .timing import BATCH, N_CLASSES, linear_head, median_ms, xor_data

JAX_PEERS = ("jax", "optax")


def configure_jax(threads: int | None) -> None:
    """Float32 on CPU; one XLA thread when the torch side runs on one (set before JAX starts)."""
    if threads == 1 and "jax" not in __import__("sys").modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def head_arrays(m: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The engine benchmark's linear head (same seeds), as float32 arrays ``(m, n_out, C)``, ``(m, 1, C)``."""
    import torch

    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    hw, hb = linear_head(m, n_out, gens, torch.float32)
    return hw.detach().numpy(), hb.detach().numpy()


def jax_timing(expvals: Callable[[Any, Any], Any], weights: np.ndarray, m: int, quick: bool) -> dict:
    """Time one jitted Adam step of ``m`` models (``m = 1``: no model axis).

    ``expvals(x (B, 64), w (n_weights,)) -> (B, n_out)`` is the peer's circuit; ``weights``
    ``(m, n_weights)`` the engine's initial weights."""
    import jax
    import jax.numpy as jnp
    import optax

    x_np, y_np = (t.numpy() for t in xor_data(800))
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    hw, hb = head_arrays(m, int(np.asarray(expvals(x[:1], jnp.asarray(weights[0]))).shape[-1]))
    params = {"w": jnp.asarray(weights), "hw": jnp.asarray(hw), "hb": jnp.asarray(hb)}
    if m == 1:
        params = {k: v[0] for k, v in params.items()}
    opt = optax.adam(0.1)

    def loss_one(p: dict, xb: Any, yb: Any) -> Any:
        logits = expvals(xb, p["w"]) @ p["hw"] + p["hb"]
        return optax.softmax_cross_entropy_with_integer_labels(logits.reshape(-1, N_CLASSES), yb).mean()

    loss = loss_one if m == 1 else (lambda p, xb, yb: jax.vmap(loss_one)(p, xb, yb).sum())
    shape = (BATCH,) if m == 1 else (m, BATCH)

    @jax.jit
    def step(p: dict, s: Any, key: Any) -> tuple:
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, shape, 0, x.shape[0])
        value, grads = jax.value_and_grad(loss)(p, x[idx], y[idx])
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, key, value

    state = [params, opt.init(params), jax.random.PRNGKey(0)]

    def run_step() -> None:
        state[0], state[1], state[2], value = step(*state)
        value.block_until_ready()

    t0 = time.perf_counter()
    run_step()
    compile_s = time.perf_counter() - t0
    res = median_ms(run_step, 60 if quick else 300, warmup=5, budget_s=5 if quick else 20)
    res.update(models=m, per_model_ms=res["median_ms"] / m, per_sample_ms=res["median_ms"] / (m * BATCH),
               compile_s=compile_s)
    return res


def engine_reference(student: Any, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The engine's initial weights ``(m, n_weights)`` (seeds 0..m-1), 4 samples and the engine's
    float64 read-outs of them with model 0's weights: the oracle every peer's outputs are checked on."""
    import torch

    from ..engine import QuantumLayer

    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    layer = QuantumLayer(student, m, gens, dtype=torch.float64)
    x = xor_data(800)[0][:4].double()
    with torch.no_grad():
        out = layer(x[None].expand(m, -1, -1))[0]
    return layer.weights.detach().float().numpy(), x.float().numpy(), out.numpy()


def max_diff(expvals: Callable[[Any, Any], Any], weights: np.ndarray, x: np.ndarray, ref: np.ndarray) -> float:
    """Largest |peer - engine| read-out on the reference samples with model 0's weights."""
    return float(np.abs(np.asarray(expvals(x, weights[0]), dtype=np.float64) - ref).max())


def missing_peer(*modules: str) -> str | None:
    """A skip reason naming the first module that does not import (None when all import)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"{name} not importable ({exc}); pip install 'qkd-qiskit[bench]'"
    return None
