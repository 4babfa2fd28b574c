"""Image datasets: canonical files (IDX, CIFAR batches), checked downloads, digits."""

import gzip

import numpy as np
import pytest
import torch

from qkd_qiskit.config import ConfigError, parse_config
from qkd_qiskit.data import load_dataset
from qkd_qiskit.data.files import (
    CIFAR_DIR,
    CIFAR_TEST,
    CIFAR_TRAIN,
    IDX_FILES,
    DataFileError,
    read_cifar_batch,
    read_idx,
    write_cifar_batch,
    write_idx,
)


def _gens(n):
    return [torch.Generator().manual_seed(i) for i in range(n)]


# ---------------------------------------------------------------------------------------- loaders


def _write_mnist(folder, n_train=40, n_test=20, side=6, gz=True, rng=None):
    rng = rng or np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (n_train, side, side)),
              "train_labels": np.arange(n_train) % 10,
              "test_images": rng.integers(0, 256, (n_test, side, side)),
              "test_labels": np.arange(n_test) % 10}
    for key, stem in IDX_FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_read_from_canonical_files(tmp_path, name):
    arrays = _write_mnist(tmp_path / name, gz=(name == "mnist"))
    ds = load_dataset(name, root=str(tmp_path), classes=[0, 1, 2], val_fraction=0.25, seed=1, download=False)
    assert ds.image_shape == (1, 6, 6) and ds.n_classes == 3 and ds.n_features == 36
    assert len(ds.x_train) + len(ds.x_val) == 12 and len(ds.x_test) == 6   # 4 (train) / 2 (test) per class
    assert set(np.bincount(ds.y_val)) == {1} and ds.x_train.dtype == np.float32
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    # test split = the canonical test file, in order, scaled to [0, 1]
    keep = arrays["test_labels"] < 3
    assert np.allclose(ds.x_test, arrays["test_images"][keep].reshape(-1, 36) / 255.0)
    again = load_dataset(name, root=str(tmp_path), classes=[0, 1, 2], val_fraction=0.25, seed=1, download=False)
    assert np.array_equal(ds.x_val, again.x_val)
    capped = load_dataset(name, root=str(tmp_path), per_class=2, download=False)
    assert len(capped.x_train) + len(capped.x_val) == 20 and capped.n_classes == 10


def test_idx_magic_truncation_and_missing_files_are_one_line_errors(tmp_path):
    arr = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    write_idx(tmp_path / "a", arr)
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-3])
    with pytest.raises(DataFileError, match="truncated or corrupt IDX"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(DataFileError, match="bad magic number"):
        read_idx(tmp_path / "magic")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(DataFileError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=str(tmp_path / "none"), download=False)
    msg = str(err.value)
    assert "\n" not in msg and "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "none" / "mnist") in msg


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over ``tmp_path / "srv"`` (the download path, without the internet)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "srv"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_missing_files_are_downloaded_once_and_checksummed(tmp_path, file_server, monkeypatch):
    import hashlib
    import tarfile

    from qkd_qiskit.data import files as images

    srv, url = file_server
    arrays = _write_mnist(srv, gz=True)
    md5 = {f"{stem}.gz": hashlib.md5((srv / f"{stem}.gz").read_bytes()).hexdigest() for stem in IDX_FILES.values()}
    monkeypatch.setitem(images.SOURCES, "mnist", (url, md5))
    ds = load_dataset("mnist", root=str(tmp_path / "data"), download=True, val_fraction=0.25)
    assert np.allclose(ds.x_test, arrays["test_images"].reshape(-1, 36) / 255.0)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(md5)  # no .part left
    for f in srv.iterdir():
        f.unlink()  # a second load reads the local copies: the server is not asked again
    assert np.array_equal(load_dataset("mnist", root=str(tmp_path / "data"), download=True,
                                       val_fraction=0.25).x_val, ds.x_val)

    # a corrupted archive is rejected and nothing is kept; the error is one line
    _write_mnist(srv, gz=True, rng=np.random.default_rng(1))
    monkeypatch.setitem(images.SOURCES, "fashion_mnist", (url, md5))
    with pytest.raises(DataFileError, match="checksum mismatch") as err:
        load_dataset("fashion_mnist", root=str(tmp_path / "data"), download=True)
    assert "\n" not in str(err.value) and not list((tmp_path / "data" / "fashion_mnist").glob("*ubyte*"))

    # CIFAR-10: one tarball, extracted into cifar-10-batches-py/
    batches = tmp_path / "build" / CIFAR_DIR
    batches.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for f in (*CIFAR_TRAIN, CIFAR_TEST):
        write_cifar_batch(batches / f, rng.integers(0, 256, (10, 3, 32, 32)), np.arange(10))
    with tarfile.open(srv / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(batches, arcname=CIFAR_DIR)
    digest = hashlib.md5((srv / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setitem(images.SOURCES, "cifar10", (url, {"cifar-10-python.tar.gz": digest}))
    cifar = load_dataset("cifar10", root=str(tmp_path / "data"), download=True)
    assert cifar.image_shape == (3, 32, 32) and len(cifar.x_test) == 10


def test_unreachable_download_is_a_one_line_error(tmp_path, monkeypatch):
    from qkd_qiskit.data import files as images

    monkeypatch.setitem(images.SOURCES, "mnist", ("http://127.0.0.1:9/", images.SOURCES["mnist"][1]))
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=str(tmp_path), download=True)
    msg = str(err.value)
    assert "\n" not in msg and "download failed" in msg and "train-images-idx3-ubyte.gz" in msg


def test_cifar10_pickles_and_corrupt_batch(tmp_path):
    folder = tmp_path / "cifar10" / CIFAR_DIR
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f in CIFAR_TRAIN:
        write_cifar_batch(folder / f, rng.integers(0, 256, (20, 3, 32, 32)), np.arange(20) % 10)
    imgs = rng.integers(0, 256, (10, 3, 32, 32))
    write_cifar_batch(folder / CIFAR_TEST, imgs, np.arange(10))
    x, y = read_cifar_batch(folder / CIFAR_TEST)
    assert np.array_equal(x, imgs) and y.tolist() == list(range(10))
    ds = load_dataset("cifar10", root=str(tmp_path), download=False)
    assert ds.image_shape == (3, 32, 32) and ds.n_features == 3072 and len(ds.x_test) == 10
    assert len(ds.x_train) + len(ds.x_val) == 100 and ds.class_names[0] == "airplane"
    assert np.allclose(ds.x_test[3], imgs[3].reshape(-1) / 255.0)
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match="data_batch_2: truncated or corrupt CIFAR-10 batch"):
        load_dataset("cifar10", root=str(tmp_path), download=False)


def test_digits_offline_and_config_options():
    ds = load_dataset("digits", classes=[0, 1, 2, 3, 4, 5], per_class=100, seed=0)
    assert ds.image_shape == (1, 8, 8) and ds.n_classes == 6
    assert len(ds.x_train) + len(ds.x_val) == 600 and ds.x_train.max() <= 1
    base = {"name": "t", "students": [{"model": "linear"}]}
    cfg = parse_config({**base, "data": {"name": "digits", "classes": [0, 1], "per_class": 5}})
    assert cfg.data.loader_options() == {"seed": 0, "root": None, "classes": [0, 1], "per_class": 5,
                                         "test_per_class": None, "val_fraction": 0.1, "download": True}
    xor = parse_config(base)
    assert "classes" not in xor.model_dump()["data"] and xor.data.loader_options()["n_bits"] == 64
    for data, msg in [({"name": "digits", "n_bits": 8}, "data: option(s) ['n_bits'] do not apply to digits"),
                      ({"name": "xor", "classes": [0, 1]}, "data: option(s) ['classes'] do not apply to xor"),
                      ({"name": "mnist", "classes": [3]}, "data.classes: must be >= 2 distinct"),
                      ({"name": "cifar10", "val_fraction": 1.5}, "data.val_fraction: Input should be less")]:
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "data": data}, "c.yaml")
        assert msg in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------- models
