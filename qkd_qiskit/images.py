"""Image datasets: scikit-learn digits (offline), MNIST, Fashion-MNIST and CIFAR-10 from their canonical files.

MNIST and Fashion-MNIST are read from the IDX files (``train-images-idx3-ubyte`` etc., plain or
``.gz``), CIFAR-10 from the python pickle batches (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``), in ``root/<dataset>/``. Missing files are downloaded once (tqdm progress bar, md5
of the canonical archive checked) when the network is reachable; offline, a one-line error says
what to download and where to put it.

Splits: the canonical train/test files; validation is carved from train (seeded, stratified). Digits
has no canonical test split: a seeded stratified 20% of its 1797 images is the test set. Features
are float32 in [0, 1], flattened channel-major (``C, H, W``); :attr:`Dataset.image_shape` keeps the
shape for CNN teachers and for centre-crop / pooling reductions.

Example:
    >>> ds = load_digits_dataset(classes=[0, 1, 2], per_class=50, seed=0)
    >>> ds.image_shape, ds.n_classes, bool(ds.x_train.max() <= 1.0)
    ((1, 8, 8), 3, True)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import Dataset

DEFAULT_ROOT = "~/.cache/qkd-qiskit"
"""Default data directory (``data.root``); the environment variable ``QKD_DATA`` overrides it."""

IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

# Canonical archives and their md5 (as published by the dataset authors / mirrored by torchvision).
SOURCES = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/", {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}),
}

CLASS_NAMES = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle-boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"


class DataFileError(ValueError):
    """A missing, corrupt or truncated data file, worded as one line."""


def data_root(root: str | None) -> Path:
    return Path(os.path.expanduser(root or os.environ.get("QKD_DATA") or DEFAULT_ROOT))


# --------------------------------------------------------------------------------------------------
# Canonical file formats
# --------------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataFileError(f"{path}: cannot read ({type(err).__name__}: {err}); delete it and download again") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX array (MNIST format): magic ``0x0000 <dtype> <ndim>``, big-endian dims, then the data."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataFileError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataFileError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise DataFileError(f"{path}: truncated or corrupt IDX file ({len(body)} data bytes, expected {need} "
                            f"for shape {dims})")
    return np.frombuffer(body, dtype).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file (gzip when ``path`` ends in .gz); used by the tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels of one CIFAR-10 python pickle batch."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as err:
        raise DataFileError(f"{path}: truncated or corrupt CIFAR-10 batch ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
    if not isinstance(batch, dict):
        raise DataFileError(f"{path}: not a CIFAR-10 batch (a {type(batch).__name__}, expected a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataFileError(f"{path}: not a CIFAR-10 batch (keys {sorted(batch)}; expected data, labels)")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataFileError(f"{path}: corrupt CIFAR-10 batch (data {data.shape}, {len(labels)} labels; "
                            "expected (N, 3072) and N labels)")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels


def write_cifar_batch(path: str | Path, images: np.ndarray, labels: Sequence[int]) -> None:
    """Write a CIFAR-10 python pickle batch (images ``(N, 3, 32, 32)`` uint8); used by the tests."""
    data = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"labels": [int(v) for v in labels], b"data": data}, f)


# --------------------------------------------------------------------------------------------------
# Locating / downloading
# --------------------------------------------------------------------------------------------------


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, md5: str, timeout: float = 20.0) -> None:
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                f.write(chunk)
                bar.update(len(chunk))
    got = _md5(tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise DataFileError(f"{url}: checksum mismatch (md5 {got}, expected {md5}); nothing was kept")
    os.replace(tmp, dest)


def _missing_hint(name: str, folder: Path) -> str:
    base, files = SOURCES[name]
    what = ", ".join(base + f for f in files)
    extra = f" and extract it there (giving {CIFAR_DIR}/)" if name == "cifar10" else ""
    return f"download {what} into {folder}{extra}, or set data.root / QKD_DATA"


def _idx_path(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def ensure_files(name: str, root: str | None, download: bool = True) -> Path:
    """The folder holding ``name``'s canonical files, downloading them once if absent and possible."""
    folder = data_root(root) / name
    if name == "cifar10":
        present = all((folder / CIFAR_DIR / f).is_file() for f in (*CIFAR_TRAIN, CIFAR_TEST))
    else:
        present = all(_idx_path(folder, s) for s in IDX_FILES.values())
    if present:
        return folder
    if not download:
        raise DataFileError(f"data.name: {name} files not found in {folder}; {_missing_hint(name, folder)}")
    base, files = SOURCES[name]
    try:
        for fname, md5 in files.items():
            dest = folder / fname
            if not (dest.is_file() and _md5(dest) == md5):
                _download(base + fname, dest, md5)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise DataFileError(f"data.name: {name} files not found in {folder} and the download failed "
                            f"({reason}); {_missing_hint(name, folder)}") from None
    if name == "cifar10":
        with tarfile.open(folder / "cifar-10-python.tar.gz") as tar:
            try:
                tar.extractall(folder, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(folder)
    return folder


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def _select(x: np.ndarray, y: np.ndarray, classes: Sequence[int] | None, per_class: int | None,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``classes`` (relabelled 0..k-1 in the given order), at most ``per_class`` random samples each."""
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if per_class is not None and len(idx) > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        keep.append(idx)
    idx = np.sort(np.concatenate(keep))
    remap = np.full(int(max(max(classes), y.max())) + 1, -1)
    remap[list(classes)] = np.arange(len(classes))
    return x[idx], remap[y[idx]]


def _stratified_cut(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, cut) with ``round(fraction * n_c)`` (>= 1) of every class in ``cut``."""
    cut = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut.append(idx[:max(1, int(round(fraction * len(idx))))])
    cut = np.sort(np.concatenate(cut))
    return np.setdiff1d(np.arange(len(y)), cut), cut


def make_image_dataset(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                       y_test: np.ndarray, image_shape: tuple[int, int, int], scale: float,
                       classes: Sequence[int] | None = None, per_class: int | None = None,
                       test_per_class: int | None = None, val_fraction: float = 0.1,
                       seed: int = 0) -> Dataset:
    """Class subset, per-class caps, seeded stratified validation split, features in [0, 1]."""
    n_all = len(CLASS_NAMES.get(name, ())) or int(max(y_train.max(), y_test.max())) + 1
    classes = list(range(n_all)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < n_all]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"data.classes: need >= 2 distinct classes in 0..{n_all - 1}, got {classes}")
    rng = np.random.default_rng(seed)
    # the cap applies to train + val together (the samples a study may learn from), as in the paper
    x_tr, y_tr = _select(x_train, y_train, classes, per_class, rng)
    x_te, y_te = _select(x_test, y_test, classes, test_per_class, rng)
    tr, va = _stratified_cut(y_tr, val_fraction, rng)

    def f(a: np.ndarray) -> np.ndarray:
        return (a.reshape(len(a), -1).astype(np.float32) / np.float32(scale))

    names = tuple(CLASS_NAMES[name][c] if name in CLASS_NAMES else str(c) for c in classes)
    return Dataset(name, f(x_tr[tr]), y_tr[tr].astype(np.int64), f(x_tr[va]), y_tr[va].astype(np.int64),
                   f(x_te), y_te.astype(np.int64), names, image_shape=tuple(image_shape))


def load_digits_dataset(classes: Sequence[int] | None = None, per_class: int | None = None,
                        test_per_class: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                        test_fraction: float = 0.2, root: str | None = None, download: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16): no download needed.

    There is no canonical test split: a stratified ``test_fraction`` (seeded by ``seed``) is held out.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.images.astype(np.float32), d.target.astype(np.int64)
    rest, test = _stratified_cut(y, test_fraction, np.random.default_rng(seed + 104729))
    return make_image_dataset("digits", x[rest], y[rest], x[test], y[test], (1, 8, 8), 16.0, classes,
                              per_class, test_per_class, val_fraction, seed)


def _load_idx_dataset(name: str, root: str | None = None, classes: Sequence[int] | None = None,
                      per_class: int | None = None, test_per_class: int | None = None,
                      val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> Dataset:
    folder = ensure_files(name, root, download)
    arr = {k: read_idx(_idx_path(folder, stem)) for k, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        xi, yi = arr[f"{split}_images"], arr[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise DataFileError(f"{folder}: {split} images {xi.shape} and labels {yi.shape} do not match "
                                "(expected (N, H, W) and (N,))")
    h, w = arr["train_images"].shape[1:]
    return make_image_dataset(name, arr["train_images"], arr["train_labels"].astype(np.int64),
                              arr["test_images"], arr["test_labels"].astype(np.int64), (1, h, w), 255.0,
                              classes, per_class, test_per_class, val_fraction, seed)


def load_mnist(**options) -> Dataset:
    return _load_idx_dataset("mnist", **options)


def load_fashion_mnist(**options) -> Dataset:
    return _load_idx_dataset("fashion_mnist", **options)


def load_cifar10(root: str | None = None, classes: Sequence[int] | None = None, per_class: int | None = None,
                 test_per_class: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                 download: bool = True) -> Dataset:
    folder = ensure_files("cifar10", root, download) / CIFAR_DIR
    parts = [read_cifar_batch(folder / f) for f in CIFAR_TRAIN]
    x_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = read_cifar_batch(folder / CIFAR_TEST)
    return make_image_dataset("cifar10", x_train, y_train, x_test, y_test, (3, 32, 32), 255.0, classes,
                              per_class, test_per_class, val_fraction, seed)
