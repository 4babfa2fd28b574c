"""The approximate amplitude embedding of the Piperno XOR task (64 features, 6 qubits) against the
kept-CX budget K: fidelity to the ideal state over the training / test split, logical CX, two-qubit
gates after transpilation to FakeKingston (embedding alone and the whole hea student; preset pass
manager, optimization level 3, best of 3 seeds), and the engine's training-step time vs the exact
embedding (medians, measured side by side in this process).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_approx_embedding.py [--ks 0,16,32,48,62] [--no-transpile]``
Prints a Markdown table (the one in docs/approx_embedding.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qkd_qiskit.backends.devices import preset_pass_manager
from qkd_qiskit.circuits import build_student, embedding_fidelity, full_cx, select_terms, terms_cx
from qkd_qiskit.data import load_dataset
from qkd_qiskit.models import HybridStudent

N_QUBITS, DEVICE, SEEDS = 6, "fake_kingston", (1234, 1235, 1236)


def two_qubit_gates(circuit) -> int:
    return min(preset_pass_manager(DEVICE, optimization_level=3, seed_transpiler=s).run(circuit).num_nonlocal_gates()
               for s in SEEDS)


def step_ms(nets: list[HybridStudent], x, reps: int = 40, batch: int = 32) -> list[float]:
    """Median milliseconds of one Adam step (forward on pre-embedded states, backward, update) of
    each net, the nets' steps interleaved so that machine load hits them alike."""
    opts = [torch.optim.Adam(net.parameters(), lr=0.1) for net in nets]
    encs = [net.encode(torch.as_tensor(x, dtype=torch.float32)) for net in nets]
    m = nets[0].quantum.weights.shape[0]
    times: list[list[float]] = [[] for _ in nets]
    for i in range(reps + 3):
        idx = torch.randint(0, len(x), (m, batch), generator=torch.Generator().manual_seed(i))
        for net, opt, enc, ts in zip(nets, opts, encs, times):
            t0 = time.perf_counter()
            loss = net(encoded=enc[idx]).logsumexp(-1).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts[3:]) * 1e3 for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="0,8,16,24,32,40,48,56,62")
    parser.add_argument("--no-transpile", action="store_true")
    args = parser.parse_args()
    data = load_dataset("xor", n_samples=1000, n_bits=64, seed=0)
    gens = [torch.Generator().manual_seed(s) for s in range(12)]
    full_net = HybridStudent(build_student("hea", N_QUBITS, 5), 3, gens)
    print("| K (kept CX) | logical CX | kept terms | fidelity train (mean / min) | fidelity test (mean / min) |"
          " 2q FakeKingston: embedding | 2q FakeKingston: hea student | step ms (approx / exact) |")
    print("|---|---|---|---|---|---|---|---|")
    for k in [int(v) for v in args.ks.split(",")]:
        terms = select_terms(data.x_train, N_QUBITS, k)
        f_tr, f_te = embedding_fidelity(data.x_train, N_QUBITS, terms), embedding_fidelity(data.x_test, N_QUBITS, terms)
        student = build_student("hea", N_QUBITS, 5, embedding_terms=terms if k < full_cx(N_QUBITS) else None)
        emb = student.circuit.copy_empty_like()
        for inst in student.circuit.data[:N_QUBITS]:  # the embedding: one gate per level
            emb.append(inst)
        q2 = ("-", "-") if args.no_transpile else (two_qubit_gates(emb), two_qubit_gates(student.measured_circuit()))
        net = HybridStudent(student, 3, gens)
        approx_ms, exact_ms = step_ms([net, full_net], data.x_train)
        print(f"| {k} | {terms_cx(terms, N_QUBITS)} | {len(terms)} | {f_tr.mean():.3f} / {f_tr.min():.3f} | "
              f"{f_te.mean():.3f} / {f_te.min():.3f} | {q2[0]} | {q2[1]} | {approx_ms:.2f} / {exact_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
