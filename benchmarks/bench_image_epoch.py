"""One training epoch of a Hasan-style image student on 60,000 samples (batch 64), exact engine.

Target (issue 7): an 8-qubit amplitude-encoded student trains one epoch on 60,000 samples in <= 10 s
on the 2-core development machine. Cases (synthetic data, one model, KD on with random teacher logits):

* ``8q amplitude, 256 features`` (reduction ``none``): inputs embedded once (``encode``), the epoch
  is the ansatz + head only; the headline number.
* ``8q amplitude, pca 784 -> 256``: the same plus the PCA projection before the one-off embedding.
* ``8q amplitude, fc 784 -> 256``: trainable reduction, so the amplitude embedding runs every step.
* the same for 4 qubits (16 features), plus 4/8-qubit angle and dense-angle encodings (fc).

Run: ``.venv/bin/python benchmarks/bench_image_epoch.py [--threads N] [--samples N] [--repeats R]``.
Times are the best of R calls of ``train_ensemble(max_epochs=1)``: the whole epoch, including the
one-off embedding of the data set that encodable students do first (also timed apart: "embed s").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qkd_qiskit.distill import KDWeights, TrainSettings, train_ensemble
from qkd_qiskit.models import build_model

CASES = [  # (qubits, encoding, reduction, features)
    (8, "amplitude", "none", 256), (8, "amplitude", "pca", 784), (8, "amplitude", "fc", 784),
    (4, "amplitude", "none", 16), (4, "amplitude", "pca", 784), (4, "amplitude", "fc", 784),
    (8, "angle", "fc", 784), (8, "dense_angle", "fc", 784), (4, "angle", "fc", 784), (4, "dense_angle", "fc", 784),
]


def epoch_seconds(qubits: int, encoding: str, reduction: str, features: int, n: int, repeats: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    x = rng.random((n, features), dtype=np.float32)
    y = rng.integers(0, 10, n)
    gens = [torch.Generator().manual_seed(0)]
    shape = (1, 28, 28) if features == 784 else None
    net = build_model("hasan", features, 10, gens, qubits=qubits, layers=3, encoding=encoding, reduction=reduction,
                      **({"image_shape": shape} if shape else {}))
    net.fit_reduction(x[:5000])
    teacher = torch.randn(1, n, 10)
    best, setup = float("inf"), 0.0
    if hasattr(net, "encode"):
        t0 = time.perf_counter()
        with torch.no_grad():
            net.encode(torch.as_tensor(x))
        setup = time.perf_counter() - t0
    for _ in range(repeats):
        t0 = time.perf_counter()
        train_ensemble(net, x, y, x[:64], y[:64], [0], TrainSettings(lr=0.01, max_epochs=1, patience=1, batch_size=64),
                       teacher, teacher[:, :64], KDWeights(1.0, 0.9, 3.0), progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only-target", action="store_true", help="just the 8- and 4-qubit amplitude cases")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [c for c in CASES if not args.only_target or c[1] == "amplitude"]
    print(f"{'case':<36}{'epoch s':>9}{'embed s':>9}   ({args.samples} samples, batch 64, {args.threads} threads)")
    for q, enc, red, f in cases:
        sec, setup = epoch_seconds(q, enc, red, f, args.samples, args.repeats)
        flag = "  <= 10 s target" if (q, enc) == (8, "amplitude") and red == "none" else ""
        print(f"{f'{q}q {enc}, {red} {f}->':<36}{sec:>9.2f}{setup:>9.2f}{flag}")


if __name__ == "__main__":
    main()
