"""``run_bench``: every measurement in one process, printed as a table or JSON."""

from __future__ import annotations

import json as _json
import os
import platform
import sys
from typing import Any

import torch

from ..circuits import build_student
from .floor import floor_report
from .jax_step import configure_jax
from .paths import bench_engine, bench_ours_qnn, bench_stock
from .peers import peer_summary
from .pennylane import bench_pennylane
from .pennylane_jax import bench_pennylane_jax
from .scaling import run300, scaling
from .tensorcircuit import bench_tensorcircuit
from .timing import BATCH, LAYERS, N_CLASSES, N_MODELS, N_QUBITS, N_SEEDS


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def run_bench(quick: bool = False, json: bool = False, threads: int | None = 1, peers: bool = True) -> dict:
    """Run all measurements; print a table (or JSON with ``json=True``) and return the dict.

    ``quick`` shortens every measurement (and stops the scaling table at 10 qubits) so the whole
    run takes a few minutes; the stock qiskit paths still cost several seconds per sample, and the
    JAX peers a minute or more of compilation each on a busy 2-core machine.
    ``threads``: torch intra-op threads for every path (1 is fastest for these small tensors; with
    1, XLA runs on one thread too). ``peers=False`` skips the JAX-compiled peers.
    """
    configure_jax(threads)
    if threads is not None:
        torch.set_num_threads(threads)
    student = build_student("hea", N_QUBITS, LAYERS)
    steps: dict[str, Any] = {}
    steps.update(bench_engine(student, quick))
    steps.update(bench_ours_qnn(student, quick))
    steps.update(bench_pennylane(student, quick))
    if peers:
        steps.update(bench_pennylane_jax(student, quick))
        steps.update(bench_tensorcircuit(student, quick, (1, N_MODELS)))
    else:
        skip = {"skipped": "--no-peers"}
        steps.update({"pennylane_jax": skip, "tensorcircuit": skip, f"tensorcircuit_{N_MODELS}": skip})
    steps.update(bench_stock(student, quick))
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
        "scaling": scaling(quick),
        "run300": run300(steps, quick),
        "peers": peer_summary(steps),
        "floor": floor_report(student, steps, (1, N_SEEDS, N_MODELS)),
    }
    if json:
        print(_json.dumps(result, indent=2, default=float))
    else:
        print_report(result)
    return result


def print_report(result: dict) -> None:
    cfg = result["config"]
    print(f"Student: {cfg['student']} {cfg['qubits']} qubits x {cfg['layers']} layers, batch {cfg['batch']}, "
          f"{cfg['readouts']} <Z> + {cfg['head']}; torch {cfg['torch']}, {cfg['threads']} thread(s)")
    print(f"Step = {cfg['step']}. Ratio = per-sample time / engine_1's per-sample time.\n")
    print(f"{'path':32s} {'median ms/step':>15s} {'CPU ms':>8s} {'ms/sample':>12s} {'x engine_1':>12s}")
    for name, res in result["steps"].items():
        if "skipped" in res:
            print(f"{name:32s} skipped: {res['skipped']}")
            continue
        per = res.get("per_sample_ms", float("nan"))
        note = f"  (per model {res['per_model_ms']:.3f} ms)" if res.get("models", 1) > 1 else ""
        note += f"  (batch {res['batch']})" if "batch" in res else ""
        note += f"  (compile {res['compile_s']:.1f} s)" if res.get("compile_s", 0) > 1 else ""
        note += f"  (max |diff| vs engine {res['max_abs_diff_vs_engine']:.1e})" if "max_abs_diff_vs_engine" in res else ""
        print(f"{name:32s} {res['median_ms']:15.3f} {res.get('cpu_median_ms', float('nan')):8.3f} {per:12.5f} "
              f"{res['ratio_vs_engine_1']:12.1f}{note}")
    steps = result["steps"]
    for m in (1, N_MODELS):
        fused, eager = steps.get(f"engine_{m}_encoded", {}), steps.get(f"engine_{m}_encoded_eager", {})
        if "median_ms" in fused and "median_ms" in eager:
            print(f"fused stage chain vs eager stages, {m} model(s): {eager['median_ms'] / fused['median_ms']:.2f}x "
                  f"faster (CPU {eager['cpu_median_ms'] / fused['cpu_median_ms']:.2f}x)")
    for m in (1, N_MODELS):
        fstep, auto = steps.get(f"engine_{m}_step", {}), steps.get(f"engine_{m}_encoded", {})
        if "median_ms" in fstep and "median_ms" in auto:
            print(f"fused training step vs autograd step, {m} model(s): {auto['median_ms'] / fstep['median_ms']:.2f}x "
                  f"faster (CPU {auto['cpu_median_ms'] / fstep['cpu_median_ms']:.2f}x)")
    print_peers(result["peers"])
    print_floor(result["floor"])
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


def print_peers(peers: dict) -> None:
    """The engine against the fastest peer, per step and per 300-epoch run (compile included)."""
    for key, label in (("single", "one model"), ("batched", f"per model, {N_MODELS} models batched")):
        c = peers[key]
        if c is None:
            print(f"\nvs fastest peer, {label}: no peer timed (pip install 'qkd-qiskit[bench]')")
            continue
        print(f"\nvs fastest peer, {label}: {c['engine']} {c['engine_ms_per_model']:.3f} ms, {c['fastest_peer']} "
              f"{c['peer_ms_per_model']:.3f} ms per step: engine {c['speedup']:.2f}x faster (CPU time "
              f"{c['engine_cpu_ms_per_model']:.3f} vs {c['peer_cpu_ms_per_model']:.3f} ms: {c['speedup_cpu']:.2f}x); compile/warm-up "
              f"{c['engine_compile_s']:.2f} s vs {c['peer_compile_s']:.1f} s; 300-epoch run per model "
              f"{c['engine_run300_s']:.1f} s vs {c['peer_run300_s']:.1f} s ({c['run300_speedup']:.2f}x)")


def print_floor(floor: dict) -> None:
    """FLOPs per step and the fraction of the arithmetic floor each path reaches."""
    print(f"\nFloor: {floor['flops_per_model_step'] / 1e6:.2f} MFLOP per model step (engine's algorithm, forward + "
          f"backward); complex matmul rate here {floor['matmul_gflops']:.1f} GFLOP/s -> "
          f"{floor['floor_ms_per_model_step'] * 1e3:.0f} us per model step")
    for name, frac in floor["fraction_of_floor"].items():
        print(f"  {name:32s} {100 * frac:6.2f} % of the floor")
