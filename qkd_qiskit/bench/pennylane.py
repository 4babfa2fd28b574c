"""The same student and step in PennyLane through ``qml.qnn.TorchLayer`` (``default.qubit`` backprop,
``lightning.qubit`` adjoint), when PennyLane is importable; and the ansatz gates every peer runs."""

from __future__ import annotations

from typing import Any

import torch

from ..engine import QuantumLayer
from .timing import BATCH, N_CLASSES, median_ms, xor_data


# --------------------------------------------------------------------------------------------------
# PennyLane
# --------------------------------------------------------------------------------------------------


def pennylane_ops(student: Any) -> list[tuple[str, tuple[int, ...], int | None]]:
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


def bench_pennylane(student: Any, quick: bool) -> dict:
    """``pennylane`` (``default.qubit`` backprop) and ``pennylane_lightning`` (``lightning.qubit``
    adjoint), each through ``qml.qnn.TorchLayer``, or their skip reasons."""
    out = {}
    for name, device, diff, module in (("pennylane", "default.qubit", "backprop", "pennylane"),
                                       ("pennylane_lightning", "lightning.qubit", "adjoint", "pennylane_lightning")):
        try:
            __import__(module)
        except ImportError as exc:
            out[name] = {"skipped": f"{module} not importable ({exc}); pip install 'qkd-qiskit[bench]'"}
            continue
        out[name] = bench_torch_layer(student, quick, device, diff)
    return out


def bench_torch_layer(student: Any, quick: bool, device: str, diff_method: str) -> dict:
    """One Adam step of ``TorchLayer`` + linear head on a PennyLane device; read-outs checked
    against the engine on the same weights."""
    import pennylane as qml

    n = student.n_qubits
    dev = qml.device(device, wires=n)
    ops = pennylane_ops(student)
    gates = {"ry": qml.RY, "rz": qml.RZ, "rx": qml.RX, "cx": qml.CNOT, "h": qml.Hadamard, "rzz": qml.IsingZZ}

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
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
    x, y = xor_data(800)
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

    res = median_ms(step, 10 if quick else 40, warmup=2)
    res.update(per_sample_ms=res["median_ms"] / BATCH, per_model_ms=res["median_ms"], models=1,
               version=qml.__version__, max_abs_diff_vs_engine=diff,
               device=device, diff_method=diff_method)
    return res
