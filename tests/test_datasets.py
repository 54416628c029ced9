"""File-based datasets: IDX (MNIST / Fashion-MNIST) and CIFAR-10 batches, written small into
tmp_path and read back; every failure mode is a DataError naming the file; the real
Fashion-MNIST files from Debian's dataset-fashion-mnist when installed."""

from __future__ import annotations

import gzip
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adversary_dynamics.learning import data
from adversary_dynamics.storage import datasets
from adversary_dynamics.storage.datasets import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


# ---- writers of tiny files in the real formats ---------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, *, gz: bool = False) -> Path:
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def make_images(n: int, seed: int, hw=(28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *hw), dtype=np.uint8)


def balanced_labels(n: int, seed: int) -> np.ndarray:
    y = np.arange(n, dtype=np.uint8) % 10
    return np.random.default_rng(seed).permutation(y).astype(np.uint8)


def write_idx_dataset(folder: Path, *, n_train=40, n_test=20, gz=False, gz_suffix=None) -> dict:
    """The four IDX files; ``gz`` compresses, ``gz_suffix`` (default: = gz) adds '.gz' to names."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if (gz if gz_suffix is None else gz_suffix) else ""
    arrays = {"train-images-idx3-ubyte": make_images(n_train, 1), "train-labels-idx1-ubyte": balanced_labels(n_train, 2),
              "t10k-images-idx3-ubyte": make_images(n_test, 3), "t10k-labels-idx1-ubyte": balanced_labels(n_test, 4)}
    for name, arr in arrays.items():
        write_idx(folder / (name + suffix), arr, gz=gz)
    return arrays


def write_cifar_dataset(folder: Path, *, per_batch=10, n_test=10, protocol=2, legacy_numpy_names=True) -> dict:
    """data_batch_1..5 and test_batch; with ``legacy_numpy_names`` the pickles reference
    numpy.core.multiarray as the real (Python 2 era) files do."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    rng = np.random.default_rng(7)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.permutation(np.arange(n) % 10)]
        write_cifar_batch(folder / name, {b"batch_label": b"x", b"data": x, b"labels": y, b"filenames": [b"f"] * n},
                          protocol=protocol, legacy_numpy_names=legacy_numpy_names)
        out[name] = (x, np.array(y))
    return out


def write_cifar_batch(path: Path, obj, *, protocol=2, legacy_numpy_names=True) -> None:
    raw = pickle.dumps(obj, protocol=protocol)
    if legacy_numpy_names and protocol == 2:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(raw)


# ---- IDX ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip_exact(tmp_path, gz):
    imgs = make_images(5, 0)
    p = write_idx(tmp_path / "imgs", imgs, gz=gz)
    out = datasets.read_idx(p, kind="images", image_shape=(28, 28))
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, imgs)
    labs = np.array([0, 9, 3], dtype=np.uint8)
    np.testing.assert_array_equal(datasets.read_idx(write_idx(tmp_path / "labs", labs, gz=gz), kind="labels"), labs)


@pytest.mark.parametrize("gz,gz_suffix", [(False, False), (True, True), (True, False), (False, True)])
def test_load_idx_dataset_exact_values(tmp_path, gz, gz_suffix):
    """Gzip is detected by content, so raw and gzipped files load under either name."""
    arrays = write_idx_dataset(tmp_path / "mnist", gz=gz, gz_suffix=gz_suffix)
    ds = data.load_file_dataset("mnist", root=tmp_path / "mnist")
    assert isinstance(ds, data.Dataset) and ds.name == "mnist" and ds.n_classes == 10
    assert ds.x_train.shape == (40, 784) and ds.x_test.shape == (20, 784) and ds.input_dim == 784
    assert ds.image_shape == (1, 28, 28) and ds.to("cpu").image_shape == (1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    want = torch.from_numpy(arrays["train-images-idx3-ubyte"].reshape(40, 784).astype(np.float32)) / 255.0
    assert torch.equal(ds.x_train, want)
    assert torch.equal(ds.y_train, torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64)))
    want_te = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].reshape(20, 784).astype(np.float32)) / 255.0
    assert torch.equal(ds.x_test, want_te)
    assert torch.equal(ds.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64)))
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0


def test_load_via_data_load_dataset(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    ds = data.load_dataset("fashion_mnist", root=str(tmp_path), n_train=20, n_test=10, seed=3)
    assert ds.name == "fashion_mnist" and ds.x_train.shape == (20, 784) and ds.x_test.shape == (10, 784)


@pytest.mark.parametrize("layout", ["MNIST/raw", "raw", ""])
def test_torchvision_and_plain_layouts(tmp_path, layout):
    write_idx_dataset(tmp_path / layout if layout else tmp_path, gz=False)
    files = datasets.check_dataset_files("mnist", tmp_path, False)
    assert len(files) == 4 and all(Path(f).parent == (tmp_path / layout if layout else tmp_path) for f in files)
    assert data.load_file_dataset("mnist", root=tmp_path).x_train.shape == (40, 784)


def test_fashion_torchvision_layout_and_raw_preferred(tmp_path):
    """torchvision keeps both X-ubyte and X-ubyte.gz: the raw one is read (no decompression)."""
    folder = tmp_path / "FashionMNIST" / "raw"
    write_idx_dataset(folder, gz=False)
    write_idx_dataset(folder, gz=True)
    files = datasets.check_dataset_files("fashion_mnist", tmp_path, False)
    assert [Path(f).name for f in files] == list(IDX_NAMES)


def test_default_root_is_data_name_under_cwd(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "data" / "mnist", gz=True)
    monkeypatch.chdir(tmp_path)
    assert data.load_file_dataset("mnist").x_train.shape == (40, 784)


def test_truncated_idx_names_file(tmp_path):
    write_idx_dataset(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    for call in (lambda: data.load_file_dataset("mnist", root=tmp_path),
                 lambda: datasets.check_dataset_files("mnist", tmp_path, False)):
        with pytest.raises(DataError, match="truncated") as e:
            call()
        assert str(p) in str(e.value)


def test_truncated_header_and_trailing_bytes(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="truncated") as e:
        datasets.read_idx(p)
    assert str(p) in str(e.value)
    p.write_bytes(idx_bytes(make_images(2, 0)) + b"junk")
    with pytest.raises(DataError, match="trailing bytes"):
        datasets.read_idx(p)


@pytest.mark.parametrize("check", [False, True])
def test_truncated_gzip_names_file(tmp_path, check):
    write_idx_dataset(tmp_path, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(DataError, match="gzip|truncated") as e:
        if check:
            datasets.check_dataset_files("mnist", tmp_path, False)
        else:
            data.load_file_dataset("mnist", root=tmp_path)
    assert str(p) in str(e.value)


def test_corrupt_gzip_names_file(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[12:20] = b"\xff" * 8  # damage the deflate stream
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        data.load_file_dataset("mnist", root=tmp_path)
    assert str(p) in str(e.value)


def test_bad_magic_names_file(tmp_path):
    write_idx_dataset(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(b"PK\x03\x04" + p.read_bytes()[4:])
    for call in (lambda: data.load_file_dataset("mnist", root=tmp_path),
                 lambda: datasets.check_dataset_files("mnist", tmp_path, False)):
        with pytest.raises(DataError, match="magic") as e:
            call()
        assert str(p) in str(e.value)


def test_labels_file_where_images_expected(tmp_path):
    write_idx_dataset(tmp_path)
    img, lab = tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte"
    img.write_bytes(lab.read_bytes())
    with pytest.raises(DataError, match="magic 00000801") as e:
        data.load_file_dataset("mnist", root=tmp_path)
    assert str(img) in str(e.value)


def test_wrong_image_size(tmp_path):
    write_idx_dataset(tmp_path)
    p = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(p, make_images(20, 0, hw=(32, 32)))
    for call in (lambda: data.load_file_dataset("fashion_mnist", root=tmp_path),
                 lambda: datasets.check_dataset_files("fashion_mnist", tmp_path, False)):
        with pytest.raises(DataError, match="wrong image size 32x32: expected 28x28") as e:
            call()
        assert str(p) in str(e.value)


def test_label_count_mismatch(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    lab = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(lab, balanced_labels(39, 0), gz=True)
    for call in (lambda: data.load_file_dataset("mnist", root=tmp_path),
                 lambda: datasets.check_dataset_files("mnist", tmp_path, False)):
        with pytest.raises(DataError, match="39 labels, but .* holds 40 images") as e:
            call()
        assert str(lab) in str(e.value) and "train-images-idx3-ubyte.gz" in str(e.value)


def test_labels_out_of_range(tmp_path):
    write_idx_dataset(tmp_path)
    lab = tmp_path / "t10k-labels-idx1-ubyte"
    y = balanced_labels(20, 0)
    y[3] = 12
    write_idx(lab, y)
    with pytest.raises(DataError, match=r"labels outside 0\.\.9 \(e\.g\. \[12\]\)") as e:
        data.load_file_dataset("mnist", root=tmp_path)
    assert str(lab) in str(e.value)


# ---- missing files, download ----------------------------------------------------------------


def test_missing_files_error_lists_files_paths_and_remedies(tmp_path):
    write_idx_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    for call in (lambda: data.load_file_dataset("fashion_mnist", root=tmp_path),
                 lambda: datasets.check_dataset_files("fashion_mnist", tmp_path, False)):
        with pytest.raises(DataError) as e:
            call()
        msg = str(e.value)
        for name in IDX_NAMES:
            assert name in msg
        for folder in datasets.candidate_dirs("fashion_mnist", tmp_path):
            assert str(folder) in msg
        assert "missing: t10k-labels-idx1-ubyte[.gz]" in msg
        assert "dataset.root" in msg and "dataset.download: true" in msg
        assert "apt-get install dataset-fashion-mnist" in msg


def test_missing_defaults_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as e:
        datasets.check_dataset_files("mnist", None, False)
    msg = str(e.value)
    assert "data/mnist" in msg and "data/MNIST/raw" in msg and "dataset.root = null" in msg
    assert "apt-get" not in msg  # only Fashion-MNIST has a Debian package


def test_missing_cifar_names_batches(tmp_path):
    with pytest.raises(DataError) as e:
        datasets.check_dataset_files("cifar10", tmp_path / "nowhere", False)
    msg = str(e.value)
    assert "data_batch_1" in msg and "test_batch" in msg and str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg


def test_download_without_torchvision_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    for call in (lambda: data.load_file_dataset("mnist", root=tmp_path, download=True),
                 lambda: datasets.check_dataset_files("mnist", tmp_path, True)):
        with pytest.raises(DataError, match="download is true, but torchvision cannot be imported") as e:
            call()
        assert "dataset.root" in str(e.value) and "dataset.download: true" not in str(e.value)


def test_download_uses_torchvision_into_root(tmp_path, monkeypatch):
    """With download=True the torchvision class is called for both splits with root; the
    files it leaves in torchvision's layout are then found and read."""
    import types

    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_idx_dataset(Path(root) / "MNIST" / "raw", gz=False)

    fake = types.ModuleType("torchvision.datasets")
    fake.MNIST = fake.FashionMNIST = fake.CIFAR10 = FakeMNIST
    pkg = types.ModuleType("torchvision")
    pkg.datasets = fake
    monkeypatch.setitem(sys.modules, "torchvision", pkg)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    # the config-time check only imports torchvision and names the download folder
    assert datasets.check_dataset_files("mnist", tmp_path / "dl", True) == [str(tmp_path / "dl")]
    assert calls == []
    ds = data.load_file_dataset("mnist", root=tmp_path / "dl", download=True)
    assert calls == [(str(tmp_path / "dl"), True, True), (str(tmp_path / "dl"), False, True)]
    assert ds.x_train.shape == (40, 784)

    class Failing:
        def __init__(self, **kw):
            raise RuntimeError("File not found or corrupted.")

    fake.CIFAR10 = Failing
    with pytest.raises(DataError, match="download into .* failed .*corrupted"):
        data.load_file_dataset("cifar10", root=tmp_path / "c", download=True)


def test_check_dataset_files_is_cheap_and_returns_paths(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    files = datasets.check_dataset_files("mnist", tmp_path, False)
    assert [Path(f).name for f in files] == [n + ".gz" for n in IDX_NAMES]
    # a damaged gzip *trailer* alone makes the check read the whole file, which then passes
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bytearray(p.read_bytes())
    assert datasets._gzip_isize(p) == 8 + 40  # 8-byte header + 40 labels
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=str(p)):  # ISIZE mismatch -> full read -> gzip error
        datasets.check_dataset_files("mnist", tmp_path, False)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown file-based dataset"):
        datasets.check_dataset_files("svhn", None, False)


# ---- CIFAR-10 -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol,legacy", [(2, True), (2, False), (4, False)])
def test_cifar_roundtrip_exact(tmp_path, protocol, legacy):
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar_dataset(folder, protocol=protocol, legacy_numpy_names=legacy)
    ds = data.load_file_dataset("cifar10", root=tmp_path)
    assert ds.name == "cifar10" and ds.n_classes == 10 and ds.image_shape == (3, 32, 32)
    assert ds.x_train.shape == (50, 3072) and ds.x_test.shape == (10, 3072) and ds.input_dim == 3072
    xtr = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    ytr = np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)])
    assert torch.equal(ds.x_train, torch.from_numpy(xtr.astype(np.float32)) / 255.0)
    assert torch.equal(ds.y_train, torch.from_numpy(ytr.astype(np.int64)))
    assert torch.equal(ds.x_test, torch.from_numpy(batches["test_batch"][0].astype(np.float32)) / 255.0)
    assert ds.x_train.dtype == torch.float32 and ds.y_test.dtype == torch.int64


def test_cifar_root_may_be_the_batches_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_dataset(folder)
    assert datasets.check_dataset_files("cifar10", folder, False) == [
        str(folder / n) for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]]
    assert data.load_file_dataset("cifar10", root=folder, n_train=20, n_test=5).x_train.shape == (20, 3072)


def test_cifar_truncated_and_corrupt(tmp_path):
    write_cifar_dataset(tmp_path)
    p = tmp_path / "data_batch_3"
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(DataError, match="corrupt or truncated CIFAR-10 batch") as e:
        data.load_file_dataset("cifar10", root=tmp_path)
    assert str(p) in str(e.value)
    p.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="not a pickled CIFAR-10 batch") as e:
        datasets.check_dataset_files("cifar10", tmp_path, False)
    assert str(p) in str(e.value)


def test_cifar_wrong_size_count_labels(tmp_path):
    write_cifar_dataset(tmp_path)
    p = tmp_path / "test_batch"
    rng = np.random.default_rng(0)
    write_cifar_batch(p, {b"data": rng.integers(0, 256, (10, 784), dtype=np.uint8), b"labels": [0] * 10})
    with pytest.raises(DataError, match="wrong image size: 784 values per image, expected 3072") as e:
        data.load_file_dataset("cifar10", root=tmp_path)
    assert str(p) in str(e.value)
    write_cifar_batch(p, {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": [0] * 9})
    with pytest.raises(DataError, match="9 labels, but b'data' holds 10 images") as e:
        data.load_file_dataset("cifar10", root=tmp_path)
    assert str(p) in str(e.value)
    write_cifar_batch(p, {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": [10] * 10})
    with pytest.raises(DataError, match=r"labels outside 0\.\.9"):
        data.load_file_dataset("cifar10", root=tmp_path)
    write_cifar_batch(p, {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"fine_labels": [1] * 10})
    with pytest.raises(DataError, match="CIFAR-100"):
        data.load_file_dataset("cifar10", root=tmp_path)


def test_cifar_unpickler_refuses_code(tmp_path):
    write_cifar_dataset(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="references .*print.*only numpy arrays") as e:
        data.load_file_dataset("cifar10", root=tmp_path)
    assert str(p) in str(e.value)


# ---- subsampling ------------------------------------------------------------------------------


def test_stratified_subsample_sizes_balance_and_determinism(tmp_path):
    write_idx_dataset(tmp_path, n_train=200, n_test=100, gz=True)
    a = data.load_file_dataset("mnist", root=tmp_path, n_train=50, n_test=30, seed=5)
    assert a.x_train.shape == (50, 784) and a.x_test.shape == (30, 784)
    assert torch.bincount(a.y_train, minlength=10).tolist() == [5] * 10
    assert torch.bincount(a.y_test, minlength=10).tolist() == [3] * 10
    b = data.load_file_dataset("mnist", root=tmp_path, n_train=50, n_test=30, seed=5)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert torch.equal(a.x_test, b.x_test)
    c = data.load_file_dataset("mnist", root=tmp_path, n_train=50, n_test=30, seed=6)
    assert not torch.equal(a.x_train, c.x_train)
    # the subsample is exactly the rows that stratified_indices picks (seed for train, seed + 1 for test)
    full = data.load_file_dataset("mnist", root=tmp_path)
    idx = data.stratified_indices(full.y_train.numpy(), 50, seed=5)
    assert torch.equal(a.x_train, full.x_train[idx])
    idx_te = data.stratified_indices(full.y_test.numpy(), 30, seed=6)
    assert torch.equal(a.y_test, full.y_test[idx_te])


def test_subsample_larger_than_split_is_a_data_error(tmp_path):
    write_idx_dataset(tmp_path)
    with pytest.raises(DataError, match="n_train=41.*40 training"):
        data.load_file_dataset("mnist", root=tmp_path, n_train=41)


# ---- the real Fashion-MNIST (Debian's dataset-fashion-mnist) ------------------------------------

needs_debian_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"real Fashion-MNIST not installed at {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist; CI installs it)")


@needs_debian_fashion
def test_real_fashion_mnist_found_without_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ folder: the Debian location must be found by default
    files = datasets.check_dataset_files("fashion_mnist", None, False)
    assert [Path(f).parent for f in files] == [DEBIAN_FASHION] * 4
    ds = data.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert float(ds.x_test.min()) >= 0.0 and float(ds.x_test.max()) <= 1.0
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test, minlength=10).tolist() == [1000] * 10
    # images are not noise: the mean image is brighter in the centre than in the corners
    mean = ds.x_train.mean(0).reshape(28, 28)
    assert float(mean[10:18, 10:18].mean()) > 3 * float(mean[:3, :3].mean())
    sub = data.load_file_dataset("fashion_mnist", n_train=1000, n_test=500, seed=0)
    assert torch.bincount(sub.y_train, minlength=10).tolist() == [100] * 10
    assert torch.bincount(sub.y_test, minlength=10).tolist() == [50] * 10


# ---- module structure, image shapes and the input scale (paper Sec. 5.1) -----------------------


def test_file_readers_do_not_import_the_rest_of_the_package():
    import subprocess

    code = ("import sys, adversary_dynamics.storage.datasets as d; "
            "print(sorted(m for m in sys.modules if m.startswith('adversary_dynamics.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['adversary_dynamics.storage', 'adversary_dynamics.storage.datasets']"
    assert callable(datasets.read_file_dataset) and not hasattr(datasets, "load_file_dataset")


def test_read_file_dataset_returns_the_raw_arrays(tmp_path):
    arrays = write_idx_dataset(tmp_path, gz=True)
    xtr, ytr, xte, yte = datasets.read_file_dataset("mnist", root=tmp_path)
    assert xtr.dtype == np.uint8 and xtr.shape == (40, 784) and ytr.dtype == np.int64
    np.testing.assert_array_equal(xte, arrays["t10k-images-idx3-ubyte"].reshape(20, 784))
    np.testing.assert_array_equal(ytr, arrays["train-labels-idx1-ubyte"])


def test_embedded_datasets_image_shapes():
    assert data.load_digits(n_train=20, n_test=10).image_shape == (1, 8, 8)
    assert data.load_dataset("digits", n_train=20, n_test=10).image_shape == (1, 8, 8)
    assert data.load_dataset("gaussian", n_train=20, n_test=10, dim=5).image_shape is None


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_mean_norm_and_rescaling_give_the_requested_scale(norm):
    ds = data.load_digits(n_train=300, n_test=100, seed=0)
    xtr, xte = ds.x_train.numpy().astype(np.float64), ds.x_test.numpy().astype(np.float64)
    order = 2 if norm == "l2" else np.inf
    ref = float(np.mean(np.linalg.norm(xtr, ord=order, axis=1)))  # numpy, row by row
    assert data.mean_norm(ds.x_train, norm=norm) == pytest.approx(ref, rel=1e-12)
    for s in (0.01, 1.0, 1000.0):
        out = data.rescale_dataset(ds, scale=s, norm=norm)
        assert out.image_shape == (1, 8, 8) and out.x_train.dtype == torch.float32
        assert data.mean_norm(out.x_train, norm=norm) == pytest.approx(s, rel=1e-6)
        # train and test by the training set's factor (the test set's own mean norm differs)
        np.testing.assert_allclose(out.x_test.numpy(), xte * (s / ref), rtol=1e-6)
        assert torch.equal(out.x_test, data.rescale_to_scale(ds.x_test, scale=s, reference=ds.x_train, norm=norm))
    # unit-norm rows (the gaussian setting): the scale is the norm of every row
    g = data.make_gaussian(d=16, n_train=50, n_test=10, n_classes=10, seed=0)
    r = data.rescale_dataset(g, scale=3.0)
    np.testing.assert_allclose(torch.linalg.vector_norm(r.x_train, dim=-1).numpy(), 3.0, rtol=1e-6)


def test_rescaling_refuses_bad_input():
    x = torch.ones(4, 3)
    with pytest.raises(ValueError, match="scale"):
        data.rescale_to_scale(x, scale=0.0, reference=x)
    with pytest.raises(ValueError, match="scale"):
        data.rescale_to_scale(x, scale=float("inf"), reference=x)
    with pytest.raises(ValueError, match="reference"):
        data.rescale_to_scale(x, scale=1.0, reference=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="norm='l1'"):
        data.mean_norm(x, norm="l1")
    assert not hasattr(data, "scale_inputs")
