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
* PennyLane ``default.qubit`` backprop through ``qml.qnn.TorchLayer`` (AmplitudeEmbedding +
  the same HEA gates), when PennyLane is importable.

It also prints a scaling table (engine step time and memory vs qubits 4..14, factored vs dense
fused unitaries) and the cost of a 300-epoch run per model with 12 seeds batched.

Example:
    >>> result = run_bench(quick=True)          # doctest: +SKIP
    >>> result["steps"]["engine_1"]["median_ms"] < result["steps"]["pennylane"]["median_ms"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json as _json
import math
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable

import torch

from .circuits import build_student
from .engine import QuantumLayer

__all__ = ["run_bench"]

BATCH = 32
N_QUBITS = 6
LAYERS = 5
N_CLASSES = 3
N_SEEDS = 12
STEPS_PER_EPOCH = 25
EPOCHS = 300


# --------------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------------


def _median_ms(step: Callable[[], Any], reps: int, warmup: int = 3, budget_s: float | None = None) -> dict:
    """Median (and min) wall time of ``step`` over ``reps`` calls, in ms (stops early on a budget)."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times), "reps": len(times)}


def _head(m: int, n_in: int, gens: list[torch.Generator], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    bound = 1 / math.sqrt(n_in)
    w = torch.stack([(torch.rand(n_in, N_CLASSES, generator=g, dtype=torch.float64) * 2 - 1) * bound for g in gens])
    b = torch.stack([(torch.rand(1, N_CLASSES, generator=g, dtype=torch.float64) * 2 - 1) * bound for g in gens])
    return torch.nn.Parameter(w.to(dtype)), torch.nn.Parameter(b.to(dtype))


def _xor_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary vectors of 64 bits, label from the first two bits (the study's generalised XOR)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 64, generator=g) > 0.5).float()
    x[x.sum(1) == 0, 0] = 1.0  # amplitude embedding needs a non-zero vector
    y = (x[:, 0] != x[:, 1]).long() * (1 + x[:, 0].long())
    return x, y


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------


def _engine_step(student: Any, m: int, encoded: bool, dtype: torch.dtype = torch.float32,
                 mode: str = "auto") -> Callable[[], None]:
    """One Adam step of ``m`` models, each on its own random mini-batch of 32."""
    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    layer = QuantumLayer(student, m, gens, dtype=dtype, mode=mode)
    hw, hb = _head(m, student.n_outputs, gens, dtype)
    opt = torch.optim.Adam([layer.weights, hw, hb], lr=0.1)
    x, y = _xor_data(800)
    x = x.to(dtype)
    enc = layer.encode(x) if encoded else None
    g = torch.Generator().manual_seed(123)

    def step() -> None:
        idx = torch.randint(0, 800, (m, BATCH), generator=g)
        opt.zero_grad(set_to_none=True)
        q = layer(encoded=enc[idx]) if encoded else layer(x[idx])
        logits = torch.baddbmm(hb, q, hw)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES), y[idx].reshape(-1))
        loss.backward()
        opt.step()

    return step


def _bench_engine(student: Any, quick: bool) -> dict:
    reps = 60 if quick else 300
    out = {}
    for name, m, enc, dtype in (("engine_1", 1, False, torch.float32), ("engine_1_f64", 1, False, torch.float64),
                                ("engine_1_encoded", 1, True, torch.float32),
                                ("engine_12", N_SEEDS, False, torch.float32),
                                ("engine_12_encoded", N_SEEDS, True, torch.float32)):
        res = _median_ms(_engine_step(student, m, enc, dtype), reps if m == 1 else reps // 2, warmup=10)
        res["models"] = m
        res["per_model_ms"] = res["median_ms"] / m
        res["per_sample_ms"] = res["median_ms"] / (m * BATCH)
        out[name] = res
    return out


# --------------------------------------------------------------------------------------------------
# qiskit-machine-learning paths
# --------------------------------------------------------------------------------------------------


def _qnn_step(student: Any, estimator: Any, gradient: Any, batch: int, circuit: Any = None
              ) -> Callable[[], None]:
    """Adam step of TorchConnector(EstimatorQNN) + linear head, raw features -> angles each step."""
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    qnn = EstimatorQNN(circuit=circuit if circuit is not None else student.circuit,
                       input_params=student.input_params, weight_params=student.weight_params,
                       observables=student.observables(), estimator=estimator, gradient=gradient,
                       default_precision=0.0)
    gen = torch.Generator().manual_seed(0)
    w0 = (torch.rand(len(student.weight_params), generator=gen, dtype=torch.float64) * 2 * math.pi).numpy()
    model = torch.nn.Sequential(TorchConnector(qnn, initial_weights=w0), torch.nn.Linear(student.n_outputs, N_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = _xor_data(800)
    g = torch.Generator().manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, 800, (batch,), generator=g)
        opt.zero_grad()
        angles = student.input_angles(x[idx])
        loss = torch.nn.functional.cross_entropy(model(angles), y[idx])
        loss.backward()
        opt.step()

    return step


def _bench_ours_qnn(student: Any, quick: bool) -> dict:
    from .primitives import EngineEstimator, EngineEstimatorGradient

    out = {}
    for name, dtype in (("qnn_engine_primitives", torch.float64), ("qnn_engine_primitives_f32", torch.float32)):
        est = EngineEstimator(dtype=dtype)
        res = _median_ms(_qnn_step(student, est, EngineEstimatorGradient(est), BATCH), 15 if quick else 60)
        res["per_sample_ms"] = res["median_ms"] / BATCH
        out[name] = res
    return out


def _bench_stock(student: Any, quick: bool) -> dict:
    """Stock paths are ~seconds per sample: a 1-2 sample batch, timed once or twice."""
    from qiskit.primitives import StatevectorEstimator
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

    batch = 1 if quick else 2
    out = {}
    est = StatevectorEstimator()
    res = _median_ms(_qnn_step(student, est, ParamShiftEstimatorGradient(est), batch), 1 if quick else 2, warmup=0)
    res.update(per_sample_ms=res["median_ms"] / batch, batch=batch)
    out["qnn_stock_statevector"] = res
    try:
        from qiskit import transpile
        from qiskit_aer.primitives import EstimatorV2 as AerEstimator
    except ImportError as exc:  # pragma: no cover - Aer is a hard dependency of the package
        out["qnn_aer_param_shift"] = {"skipped": f"qiskit-aer not importable: {exc}"}
        return out
    aer = AerEstimator()
    basis = ["rx", "ry", "rz", "cx", "h", "rzz", "measure"]
    circuit = transpile(student.circuit, basis_gates=basis, optimization_level=0)
    res = _median_ms(_qnn_step(student, aer, ParamShiftEstimatorGradient(aer), batch, circuit=circuit),
                     1 if quick else 2, warmup=1)
    res.update(per_sample_ms=res["median_ms"] / batch, batch=batch)
    out["qnn_aer_param_shift"] = res
    return out


# --------------------------------------------------------------------------------------------------
# PennyLane
# --------------------------------------------------------------------------------------------------


def _pennylane_ops(student: Any) -> list[tuple[str, tuple[int, ...], int | None]]:
    """The ansatz gates of the Qiskit circuit (after the embedding) as (name, wires, weight index),
    read from ``circuit.data`` so PennyLane runs exactly the same gates."""
    n = student.n_qubits
    widx = {p: i for i, p in enumerate(student.weight_params)}
    ops = []
    for inst in student.circuit.data:
        name = inst.operation.name
        qs = tuple(n - 1 - student.circuit.find_bit(q).index for q in inst.qubits)  # PennyLane is big-endian
        params = inst.operation.params
        if name in ("mux_ry", "barrier") or (params and params[0] in set(student.input_params)):
            continue
        ops.append((name, qs, widx[params[0]] if params else None))
    return ops


def _bench_pennylane(student: Any, quick: bool) -> dict:
    try:
        import pennylane as qml
    except ImportError as exc:
        return {"pennylane": {"skipped": f"pennylane not importable ({exc}); pip install pennylane"}}
    n = student.n_qubits
    dev = qml.device("default.qubit", wires=n)
    ops = _pennylane_ops(student)
    gates = {"ry": qml.RY, "rz": qml.RZ, "rx": qml.RX, "cx": qml.CNOT, "h": qml.Hadamard, "rzz": qml.IsingZZ}

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(inputs: torch.Tensor, weights: torch.Tensor) -> list:
        qml.AmplitudeEmbedding(inputs, wires=range(n), normalize=True, pad_with=0.0)
        for name, wires, j in ops:
            if j is None:
                gates[name](wires=wires)
            else:
                gates[name](weights[j], wires=wires)
        return [qml.expval(qml.PauliZ(n - 1 - q)) for q in student.readout_qubits]

    layer = qml.qnn.TorchLayer(circuit, {"weights": (len(student.weight_params),)})
    model = torch.nn.Sequential(layer, torch.nn.Linear(len(student.readout_qubits), N_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = _xor_data(800)
    g = torch.Generator().manual_seed(2)
    # sanity: same function as the engine
    check = QuantumLayer(student, 1, dtype=torch.float32)
    with torch.no_grad():
        check.weights.copy_(layer.weights.detach()[None].float())
        diff = float((check(x[None, :4])[0] - layer(x[:4]).float()).abs().max())

    def step() -> None:
        idx = torch.randint(0, 800, (BATCH,), generator=g)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()

    res = _median_ms(step, 10 if quick else 40, warmup=2)
    res.update(per_sample_ms=res["median_ms"] / BATCH, version=qml.__version__, max_abs_diff_vs_engine=diff)
    return {"pennylane": res}


# --------------------------------------------------------------------------------------------------
# Scaling and the 300-epoch run
# --------------------------------------------------------------------------------------------------


def _saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
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


def _scaling(quick: bool) -> list[dict]:
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
            res = _median_ms(step, reps if not quick else max(3, reps // 4), warmup=2,
                             budget_s=4 if quick else 15)
            saved = _saved_bytes(lambda: layer(encoded=enc).sum())
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows.append({"qubits": n, "mode": mode, "step_ms": res["median_ms"], "reps": res["reps"],
                         "autograd_saved_MB": saved / 1e6, "maxrss_growth_MB": (rss1 - rss0) / 1024,
                         "state_MB": 8 * BATCH * 2**n / 1e6})
            del layer, enc
    return rows


def _run300(steps: dict, quick: bool) -> dict:
    """Cost of one model's 300-epoch run (800 samples, batch 32) while seeds are batched.

    Estimated from the batched step medians, and measured with the project's own trainer
    (:func:`qkd_qiskit.distill.train_ensemble`, validation every epoch, early stopping off) for
    12 seeds and for 24 models (12 seeds x KD off/on, as ``qkd run`` batches them), extrapolated to
    300 epochs from ``epochs`` measured ones.
    """
    from .distill import TrainSettings, train_ensemble
    from .models import build_model

    steps_total = EPOCHS * STEPS_PER_EPOCH
    out = {"steps_per_model": steps_total}
    for key in ("engine_12", "engine_12_encoded"):
        out[f"estimate_s_per_model_{key}"] = steps[key]["median_ms"] * steps_total / N_SEEDS / 1e3
    if "pennylane" in steps and "median_ms" in steps["pennylane"]:
        out["pennylane_estimate_s_per_model"] = steps["pennylane"]["median_ms"] * steps_total / 1e3
    epochs = 3 if quick else 30
    x, y = _xor_data(1000)
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


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def run_bench(quick: bool = False, json: bool = False, threads: int | None = 1) -> dict:
    """Run all measurements; print a table (or JSON with ``json=True``) and return the dict.

    ``quick`` shortens every measurement (and stops the scaling table at 10 qubits) so the whole
    run takes about a minute; the stock qiskit paths still cost several seconds per sample.
    ``threads``: torch intra-op threads for every path (1 is fastest for these small tensors).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    student = build_student("hea", N_QUBITS, LAYERS)
    steps: dict[str, Any] = {}
    steps.update(_bench_engine(student, quick))
    steps.update(_bench_ours_qnn(student, quick))
    steps.update(_bench_pennylane(student, quick))
    steps.update(_bench_stock(student, quick))
    base = steps["engine_1"]
    for res in steps.values():
        if "median_ms" in res:
            res["ratio_vs_engine_1"] = res.get("per_sample_ms", res["median_ms"]) / base["per_sample_ms"]
    result = {
        "config": {"student": "hea", "qubits": N_QUBITS, "layers": LAYERS, "batch": BATCH,
                   "readouts": len(student.readout_qubits), "head": f"linear {student.n_outputs}->{N_CLASSES}",
                   "step": "zero_grad + forward + cross-entropy + backward + Adam",
                   "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "cpu_count": os.cpu_count(), "python": platform.python_version(), "quick": quick},
        "steps": steps,
        "scaling": _scaling(quick),
        "run300": _run300(steps, quick),
    }
    if json:
        print(_json.dumps(result, indent=2, default=float))
    else:
        _print_report(result)
    return result


def _print_report(result: dict) -> None:
    cfg = result["config"]
    print(f"Student: {cfg['student']} {cfg['qubits']} qubits x {cfg['layers']} layers, batch {cfg['batch']}, "
          f"{cfg['readouts']} <Z> + {cfg['head']}; torch {cfg['torch']}, {cfg['threads']} thread(s)")
    print(f"Step = {cfg['step']}. Ratio = per-sample time / engine_1's per-sample time.\n")
    print(f"{'path':32s} {'median ms/step':>15s} {'ms/sample':>12s} {'x engine_1':>12s}")
    for name, res in result["steps"].items():
        if "skipped" in res:
            print(f"{name:32s} skipped: {res['skipped']}")
            continue
        per = res.get("per_sample_ms", float("nan"))
        note = f"  (per model {res['per_model_ms']:.3f} ms)" if res.get("models", 1) > 1 else ""
        note += f"  (batch {res['batch']})" if "batch" in res else ""
        print(f"{name:32s} {res['median_ms']:15.3f} {per:12.5f} {res['ratio_vs_engine_1']:12.1f}{note}")
    steps = result["steps"]
    e1 = steps["engine_1"]["median_ms"]
    if "median_ms" in steps.get("pennylane", {}):
        print(f"\nPennyLane step / engine step: {steps['pennylane']['median_ms'] / e1:.1f}x "
              f"(outputs agree to {steps['pennylane']['max_abs_diff_vs_engine']:.1e})")
    for key in ("qnn_stock_statevector", "qnn_aer_param_shift"):
        if "per_sample_ms" in steps.get(key, {}):
            ratio = steps[key]["per_sample_ms"] / steps["engine_1"]["per_sample_ms"]
            print(f"{key} per sample / engine per sample: {ratio:.0f}x")
    q32, q64 = steps["qnn_engine_primitives_f32"]["median_ms"], steps["qnn_engine_primitives"]["median_ms"]
    print(f"TorchConnector + engine primitives / engine step of the same dtype: {q32 / e1:.1f}x (float32), "
          f"{q64 / steps['engine_1_f64']['median_ms']:.1f}x (float64; {q64 / e1:.1f}x the float32 engine)")
    print("\nScaling (one model, forward + backward, batch 32, HEA 5 layers):")
    print(f"{'qubits':>6s} {'mode':>9s} {'step ms':>10s} {'saved MB':>10s} {'rss+ MB':>9s} {'state MB':>9s}")
    for row in result["scaling"]:
        if "skipped" in row:
            print(f"{row['qubits']:6d} {row['mode']:>9s}   skipped: {row['skipped']}")
        else:
            print(f"{row['qubits']:6d} {row['mode']:>9s} {row['step_ms']:10.2f} {row['autograd_saved_MB']:10.1f} "
                  f"{row['maxrss_growth_MB']:9.1f} {row['state_MB']:9.2f}")
    r = result["run300"]
    print(f"\n300-epoch run, per model with {N_SEEDS} seeds batched ({r['steps_per_model']} steps): "
          f"estimate {r['estimate_s_per_model_engine_12']:.2f} s (raw features), "
          f"{r['estimate_s_per_model_engine_12_encoded']:.2f} s (encoded inputs)")
    print(f"measured with the trainer ({r['measured_epochs']} epochs, extrapolated, validation included): "
          f"{r[f'trainer_{N_SEEDS}_models_s_per_model_300_epochs']:.2f} s per model with {N_SEEDS} models "
          f"batched, {r[f'trainer_{2 * N_SEEDS}_models_s_per_model_300_epochs']:.2f} s with {2 * N_SEEDS} "
          "(12 seeds x KD off/on, as qkd run batches them)")
    if "pennylane_estimate_s_per_model" in r:
        print(f"PennyLane, same run: {r['pennylane_estimate_s_per_model']:.0f} s per model")
    sys.stdout.flush()
