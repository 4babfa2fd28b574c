"""Image dataset files: where they live, how they are downloaded once (md5-checked), and the
readers and writers of their formats (IDX for MNIST / Fashion-MNIST, python pickle batches for CIFAR-10).

MNIST and Fashion-MNIST are read from the IDX files (``train-images-idx3-ubyte`` etc., plain or
``.gz``), CIFAR-10 from ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``, in
``root/<dataset>/``. Missing files are downloaded once (tqdm progress bar, md5 of the canonical
archive checked) when the network is reachable; offline, a one-line error says what to download and
where to put it.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
    >>> write_idx(p, np.arange(3, dtype=np.uint8)); read_idx(p).tolist()
    [0, 1, 2]
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
    from ..progress import progress_bar

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as f, progress_bar(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
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


def idx_path(folder: Path, stem: str) -> Path | None:
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
        present = all(idx_path(folder, s) for s in IDX_FILES.values())
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
