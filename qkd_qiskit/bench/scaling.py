"""Engine step time and memory against register width, and the cost of a 300-epoch run."""

from __future__ import annotations

import resource
import time
from typing import Callable

import torch

from ..circuits import build_student
from ..engine import QuantumLayer
from .timing import BATCH, EPOCHS, LAYERS, N_CLASSES, N_SEEDS, STEPS_PER_EPOCH, median_ms, xor_data


# --------------------------------------------------------------------------------------------------
# Scaling and the 300-epoch run
# --------------------------------------------------------------------------------------------------


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of all tensors autograd saves for backward (deduplicated by storage)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        except RuntimeError:
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def scaling(quick: bool) -> list[dict]:
    """Engine step (forward + backward, batch 32, HEA 5 layers) vs qubits, factored vs dense."""
    rows = []
    sizes = range(4, 11) if quick else range(4, 15)
    for n in sizes:
        student = build_student("hea", n_qubits=n, layers=LAYERS)
        x = (torch.rand(1, BATCH, 2**n, generator=torch.Generator().manual_seed(n)) + 0.1)
        for mode in ("factored", "dense"):
            dense_bytes = 8 * (LAYERS + 1) * 4**n  # one (2^n, 2^n) complex64 unitary per stage
            if mode == "dense" and n > 10:
                rows.append({"qubits": n, "mode": mode,
                             "skipped": f"dense unitaries alone need {dense_bytes / 1e9:.1f} GB (4^n)"})
                continue
            layer = QuantumLayer(student, 1, [torch.Generator().manual_seed(0)], mode=mode)
            enc = layer.encode(x)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

            def step() -> None:
                layer.weights.grad = None
                layer(encoded=enc).sum().backward()

            reps = 20 if n <= 10 else 5
            res = median_ms(step, reps if not quick else max(3, reps // 4), warmup=2,
                             budget_s=4 if quick else 15)
            saved = saved_bytes(lambda: layer(encoded=enc).sum())
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows.append({"qubits": n, "mode": mode, "step_ms": res["median_ms"], "reps": res["reps"],
                         "autograd_saved_MB": saved / 1e6, "maxrss_growth_MB": (rss1 - rss0) / 1024,
                         "state_MB": 8 * BATCH * 2**n / 1e6})
            del layer, enc
    return rows


def run300(steps: dict, quick: bool) -> dict:
    """Cost of one model's 300-epoch run (800 samples, batch 32) while seeds are batched.

    Estimated from the batched step medians, and measured with the project's own trainer
    (:func:`qkd_qiskit.distill.train_ensemble`, validation every epoch, early stopping off) for
    12 seeds and for 24 models (12 seeds x KD off/on, as ``qkd run`` batches them), extrapolated to
    300 epochs from ``epochs`` measured ones.
    """
    from ..distill import TrainSettings, train_ensemble
    from ..models import build_model

    steps_total = EPOCHS * STEPS_PER_EPOCH
    out = {"steps_per_model": steps_total}
    for key in ("engine_12", "engine_12_encoded"):
        out[f"estimate_s_per_model_{key}"] = steps[key]["median_ms"] * steps_total / N_SEEDS / 1e3
    if "pennylane" in steps and "median_ms" in steps["pennylane"]:
        out["pennylane_estimate_s_per_model"] = steps["pennylane"]["median_ms"] * steps_total / 1e3
    epochs = 3 if quick else 30
    x, y = xor_data(1000)
    x, y = x.numpy(), y.numpy()
    for n_models in (N_SEEDS, 2 * N_SEEDS):
        seeds = list(range(n_models))
        net = build_model("hea", x.shape[1], N_CLASSES, [torch.Generator().manual_seed(s) for s in seeds])
        settings = TrainSettings(lr=0.1, max_epochs=epochs, patience=epochs + 1, batch_size=BATCH)
        t0 = time.perf_counter()
        train_ensemble(net, x[:800], y[:800], x[800:900], y[800:900], seeds, settings, progress=False)
        elapsed = time.perf_counter() - t0
        out[f"trainer_{n_models}_models_s_per_model_300_epochs"] = elapsed * EPOCHS / epochs / n_models
    out["measured_epochs"] = epochs
    out["measured_s_per_model_300_epochs"] = out[f"trainer_{2 * N_SEEDS}_models_s_per_model_300_epochs"]
    return out
