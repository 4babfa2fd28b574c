"""The engine against its fastest peer: per step (one model, and per model with 24 batched) and per 300-epoch run.

A peer is every other way to train the same student that ``qkd bench`` timed (PennyLane
``default.qubit`` and ``lightning.qubit`` through torch, PennyLane + JAX under ``jax.jit``,
TensorCircuit-NG jit + vmap). The engine rows are the fused training steps (``engine_1_step``,
``engine_24_step``), the path ``qkd run`` trains this student with (the data set is embedded once;
the JAX peers normalise their raw features inside their compiled step); without them, the
encoded-input autograd steps. The fastest peer is the one with the lowest median wall time; ``speedup``
compares wall times, ``speedup_cpu`` this process's CPU times (on a machine shared with other
jobs the wall time also counts waiting for a core). A 300-epoch run of one model (7,500 steps) costs its per-model step time x
7,500 plus its compile / warm-up time divided by the models that share it.

Example:
    >>> steps = {"engine_1_step": {"per_model_ms": 0.5, "models": 1, "compile_s": 0.1},
    ...          "tensorcircuit": {"per_model_ms": 1.0, "models": 1, "compile_s": 8.0}}
    >>> s = peer_summary(steps)
    >>> s["single"]["fastest_peer"], s["single"]["speedup"], round(s["single"]["peer_run300_s"], 1)
    ('tensorcircuit', 2.0, 15.5)
"""

from __future__ import annotations

from .timing import EPOCHS, N_MODELS, STEPS_PER_EPOCH

SINGLE_PEERS = ("pennylane", "pennylane_lightning", "pennylane_jax", "tensorcircuit")
BATCHED_PEERS = (f"tensorcircuit_{N_MODELS}", f"pennylane_jax_{N_MODELS}")


def run300_s(res: dict) -> float:
    """Seconds per model of a 300-epoch run: compile / warm-up shared by the batched models + steps."""
    return res.get("compile_s", 0.0) / res.get("models", 1) + EPOCHS * STEPS_PER_EPOCH * res["per_model_ms"] / 1e3


def compare(steps: dict, engine: str, peers: tuple[str, ...]) -> dict | None:
    """The fastest timed peer of ``peers`` against ``engine`` (None when no peer was timed)."""
    timed = [p for p in peers if "per_model_ms" in steps.get(p, {})]
    if engine not in steps or not timed:
        return None
    best = min(timed, key=lambda p: steps[p]["per_model_ms"])
    e, p = steps[engine], steps[best]
    cpu = {k: r.get("cpu_median_ms", float("nan")) / r.get("models", 1) for k, r in (("e", e), ("p", p))}
    return {"engine": engine, "fastest_peer": best, "engine_ms_per_model": e["per_model_ms"],
            "peer_ms_per_model": p["per_model_ms"], "speedup": p["per_model_ms"] / e["per_model_ms"],
            "engine_cpu_ms_per_model": cpu["e"], "peer_cpu_ms_per_model": cpu["p"],
            "speedup_cpu": cpu["p"] / cpu["e"],
            "peer_compile_s": p.get("compile_s", 0.0), "engine_compile_s": e.get("compile_s", 0.0),
            "engine_run300_s": run300_s(e), "peer_run300_s": run300_s(p),
            "run300_speedup": run300_s(p) / run300_s(e)}


def peer_summary(steps: dict) -> dict:
    """``single`` (one model) and ``batched`` (per model, 24 models) comparisons."""
    def engine(m: int) -> str:
        return f"engine_{m}_step" if f"engine_{m}_step" in steps else f"engine_{m}_encoded"

    return {"single": compare(steps, engine(1), SINGLE_PEERS),
            "batched": compare(steps, engine(N_MODELS), BATCHED_PEERS)}
