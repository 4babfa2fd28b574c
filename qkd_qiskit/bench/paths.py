"""One training step of the benchmark student on each Qiskit-side path: this engine (1 and 12 models),
``TorchConnector(EstimatorQNN)`` on the engine primitives, stock qiskit-machine-learning, and Aer
with parameter shift."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from ..circuits import initial_weights
from ..engine import QuantumLayer, unfused
from ..models import HybridStudent
from ..train_step import FusedStep
from .timing import BATCH, N_CLASSES, N_MODELS, N_SEEDS, linear_head, median_ms, xor_data


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------


def engine_step(student: Any, m: int, encoded: bool, dtype: torch.dtype = torch.float32,
                 mode: str = "auto", fused: bool = True) -> Callable[[], None]:
    """One Adam step of ``m`` models, each on its own random mini-batch of 32 (``fused=False``:
    the eager stage-by-stage path instead of the fused chain, :mod:`qkd_qiskit.engine.fused`)."""
    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    layer = QuantumLayer(student, m, gens, dtype=dtype, mode=mode)
    hw, hb = linear_head(m, student.n_outputs, gens, dtype)
    opt = torch.optim.Adam([layer.weights, hw, hb], lr=0.1)
    x, y = xor_data(800)
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

    if fused:
        return step

    def eager_step() -> None:
        with unfused():
            step()

    return eager_step


def training_step(student: Any, m: int, dtype: torch.dtype = torch.float32) -> Callable[[], None]:
    """One step of ``m`` models as the trainer runs it for this student: the fused training step
    (:mod:`qkd_qiskit.train_step`; the same forward + CE + backward + Adam as :func:`engine_step`,
    in one compiled kernel), each model on its own random mini-batch of 32."""
    gens = [torch.Generator().manual_seed(s) for s in range(m)]
    net = HybridStudent(student, N_CLASSES, gens, dtype=dtype)
    step = FusedStep.build(net, lr=0.1)
    if step is None:
        raise ValueError(f"training_step: the fused training step does not apply to {student.name}")
    x, y = xor_data(800)
    enc = net.encode(x.to(dtype))
    g = torch.Generator().manual_seed(123)

    def run() -> None:
        step(enc, y, torch.randint(0, 800, (m, BATCH), generator=g))

    return run


def bench_engine(student: Any, quick: bool) -> dict:
    """Engine steps: 1 model (raw features, float64, encoded inputs), 12 and 24 models batched, as
    torch autograd + ``torch.optim.Adam`` steps around the fused stage chain; the ``_eager`` rows
    run every stage as its own torch ops instead; the ``_step`` rows are the trainer's fused
    training step (:func:`training_step`). ``compile_s``: building the layer and its first step
    (warm-up; the kernels' machine code comes from numba's on-disk cache after the first run on a
    machine)."""
    reps = 60 if quick else 300
    builders = [("engine_1_step", 1, lambda: training_step(student, 1)),
                (f"engine_{N_MODELS}_step", N_MODELS, lambda: training_step(student, N_MODELS))]
    for name, m, enc, dtype, fused in (
            ("engine_1", 1, False, torch.float32, True), ("engine_1_f64", 1, False, torch.float64, True),
            ("engine_1_encoded", 1, True, torch.float32, True),
            ("engine_1_encoded_eager", 1, True, torch.float32, False),
            ("engine_12", N_SEEDS, False, torch.float32, True),
            ("engine_12_encoded", N_SEEDS, True, torch.float32, True),
            (f"engine_{N_MODELS}_encoded", N_MODELS, True, torch.float32, True),
            (f"engine_{N_MODELS}_encoded_eager", N_MODELS, True, torch.float32, False)):
        builders.append((name, m, lambda m=m, enc=enc, dtype=dtype, fused=fused:
                         engine_step(student, m, enc, dtype, fused=fused)))
    out = {}
    for name, m, build in builders:
        t0 = time.perf_counter()
        step = build()
        step()
        compile_s = time.perf_counter() - t0
        res = median_ms(step, reps if m == 1 else reps // 2, warmup=10)
        res["models"], res["compile_s"] = m, compile_s
        res["per_model_ms"] = res["median_ms"] / m
        res["per_sample_ms"] = res["median_ms"] / (m * BATCH)
        out[name] = res
    return out


# --------------------------------------------------------------------------------------------------
# qiskit-machine-learning paths
# --------------------------------------------------------------------------------------------------


def qnn_step(student: Any, estimator: Any, gradient: Any, batch: int, circuit: Any = None
              ) -> Callable[[], None]:
    """Adam step of TorchConnector(EstimatorQNN) + linear head, raw features -> angles each step."""
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    qnn = EstimatorQNN(circuit=circuit if circuit is not None else student.circuit,
                       input_params=student.input_params, weight_params=student.weight_params,
                       observables=student.observables(), estimator=estimator, gradient=gradient,
                       default_precision=0.0)
    w0 = initial_weights(len(student.weight_params), [torch.Generator().manual_seed(0)], torch.float64)[0].numpy()
    model = torch.nn.Sequential(TorchConnector(qnn, initial_weights=w0), torch.nn.Linear(student.n_outputs, N_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = xor_data(800)
    g = torch.Generator().manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, 800, (batch,), generator=g)
        opt.zero_grad()
        angles = student.input_angles(x[idx])
        loss = torch.nn.functional.cross_entropy(model(angles), y[idx])
        loss.backward()
        opt.step()

    return step


def bench_ours_qnn(student: Any, quick: bool) -> dict:
    from ..primitives import EngineEstimator, EngineEstimatorGradient

    out = {}
    for name, dtype in (("qnn_engine_primitives", torch.float64), ("qnn_engine_primitives_f32", torch.float32)):
        est = EngineEstimator(dtype=dtype)
        res = median_ms(qnn_step(student, est, EngineEstimatorGradient(est), BATCH), 15 if quick else 60)
        res["per_sample_ms"] = res["median_ms"] / BATCH
        out[name] = res
    return out


def bench_stock(student: Any, quick: bool) -> dict:
    """Stock paths are ~seconds per sample: a 1-2 sample batch, timed once or twice."""
    from qiskit.primitives import StatevectorEstimator
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

    batch = 1 if quick else 2
    out = {}
    est = StatevectorEstimator()
    res = median_ms(qnn_step(student, est, ParamShiftEstimatorGradient(est), batch), 1 if quick else 2, warmup=0)
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
    res = median_ms(qnn_step(student, aer, ParamShiftEstimatorGradient(aer), batch, circuit=circuit),
                     1 if quick else 2, warmup=1)
    res.update(per_sample_ms=res["median_ms"] / batch, batch=batch)
    out["qnn_aer_param_shift"] = res
    return out
