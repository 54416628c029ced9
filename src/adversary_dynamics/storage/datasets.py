"""File readers of MNIST and Fashion-MNIST (IDX files) and CIFAR-10 (python batches).

Pure readers: :func:`read_file_dataset` returns numpy arrays (uint8 pixels, flattened: d = 784
for MNIST and Fashion-MNIST of image shape (1, 28, 28), d = 3072 for CIFAR-10 in its
channel-major order R, G, B, image shape (3, 32, 32); int64 labels 0..9) and nothing from the
rest of the package is imported here. :func:`adversary_dynamics.learning.data.load_dataset` turns them
into a :class:`~adversary_dynamics.learning.data.Dataset` (pixel / 255, stratified subsampling).

Formats
-------
* IDX (MNIST, Fashion-MNIST): big-endian header ``0x00 0x00 <type> <ndim>`` followed by
  ``ndim`` uint32 dimensions and the unsigned bytes; magic ``0x00000803`` for the images
  (N × 28 × 28) and ``0x00000801`` for the labels (N). Files may be gzipped (detected by the
  gzip magic bytes, whatever the name) and may be called ``X-ubyte`` or ``X-ubyte.gz``.
* CIFAR-10: ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` and ``test_batch``,
  pickled dicts with ``b"data"`` (uint8, N × 3072) and ``b"labels"`` (N ints). They are
  unpickled with a restricted unpickler that only builds numpy arrays, so a foreign pickle
  cannot run code.

Where files are looked for
--------------------------
With ``root`` set, only under ``root`` (see :func:`candidate_dirs`); with ``root=None``, under
``data/<name>`` and ``data`` (relative to the working directory) and, for Fashion-MNIST,
Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
Inside each root the plain layout, ``raw/`` and torchvision's layouts (``MNIST/raw``,
``FashionMNIST/raw``, ``cifar-10-batches-py``) are tried. The first folder holding the
complete set wins.

Missing files are an error (:class:`DataError`) naming the expected files, every folder
searched and how to get them, unless ``download=True``: then torchvision's downloaders
(which verify checksums) fetch them into ``root`` (``data/<name>`` when ``root`` is None).
torchvision is imported only then. :func:`check_dataset_files` does the same search and
checks every file's header without loading the data, so a workflow can fail before any job
starts.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataError", "FILE_DATASETS", "IMAGE_SHAPES", "N_CLASSES", "DEFAULT_ROOTS", "candidate_dirs",
           "expected_files", "find_files", "check_dataset_files", "read_idx", "read_cifar_batch",
           "read_file_dataset"]

FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
N_CLASSES = 10
#: (C, H, W) of every file-based dataset's images (the flat inputs are their channel-major flattening)
IMAGE_SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}

#: Fixed folders searched when ``root`` is None (after ``data/<name>`` and ``data``).
DEFAULT_ROOTS = {
    "mnist": (),
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
    "cifar10": (),
}

_IDX_FILES = {  # split -> (images, labels), without the .gz suffix
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IMAGE_SHAPE = {"mnist": (28, 28), "fashion_mnist": (28, 28)}
_CIFAR_DIM = 3072
_GZIP_MAGIC = b"\x1f\x8b"
_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801


class DataError(ValueError):
    """A dataset file is missing, truncated, corrupt or not in the expected format."""


# --------------------------------------------------------------------------------------------
# where files are looked for


def _check_name(name: str) -> None:
    if name not in FILE_DATASETS:
        raise ValueError(f"unknown file-based dataset {name!r}: choose one of {FILE_DATASETS}")


def expected_files(name: str) -> tuple[str, ...]:
    """The file names one folder must hold (IDX names without the optional ``.gz``)."""
    _check_name(name)
    if name == "cifar10":
        return _CIFAR_TRAIN + _CIFAR_TEST
    return _IDX_FILES["train"] + _IDX_FILES["test"]


def _idx_variants(base: str) -> tuple[str, ...]:
    # the raw name first (no decompression), then gzip; "train-images.idx3-ubyte" is a common
    # re-upload spelling of the same file
    dotted = base.replace("-idx", ".idx")
    return (base, base + ".gz", dotted, dotted + ".gz")


def candidate_dirs(name: str, root: str | os.PathLike | None) -> list[Path]:
    """Folders searched, in order, for dataset ``name`` under ``root`` (defaults when None)."""
    _check_name(name)
    roots = ([Path(root).expanduser()] if root is not None
             else [Path("data") / name, Path("data"), *map(Path, DEFAULT_ROOTS[name])])
    out: list[Path] = []
    for r in roots:
        if name == "cifar10":
            subs = [r, r / "cifar-10-batches-py", r / "cifar10" / "cifar-10-batches-py"]
        else:
            tv = _TORCHVISION_DIR[name]
            subs = [r, r / "raw", r / tv / "raw"]
        for s in subs:
            if s not in out:
                out.append(s)
    return out


def _locate(folder: Path, name: str) -> tuple[dict[str, Path], list[str]]:
    """(found files by expected name, missing expected names) in one folder."""
    found, missing = {}, []
    for base in expected_files(name):
        variants = (base,) if name == "cifar10" else _idx_variants(base)
        hit = next((folder / v for v in variants if (folder / v).is_file()), None)
        if hit is None:
            missing.append(base if name == "cifar10" else f"{base}[.gz]")
        else:
            found[base] = hit
    return found, missing


def _how_to_get(name: str, *, download_hint: bool = True) -> str:
    lines = ["How to get them:",
             "  * point the config at a folder that holds them: dataset.root: /path/to/folder"]
    if download_hint:
        lines.append("  * or let torchvision download them (needs a network and `pip install torchvision`): "
                     "dataset.download: true")
    if name == "fashion_mnist":
        lines.append("  * or, on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
                     "(installs /usr/share/datasets/fashion-mnist, found without configuration)")
    if name == "cifar10":
        lines.append("  * or unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
                     "into data/cifar10")
    else:
        lines.append(f"  * or copy the four IDX files (gzipped or not) into data/{name}")
    return "\n".join(lines)


#: the ``files`` of a data fingerprint computed without the files (``stages.data_fingerprint(missing_ok=True)``:
#: a dry run plans with it; no job runs under it)
PLACEHOLDER = "missing"


def refuse_placeholder(stage: dict | None, *, root: str | os.PathLike | None = None) -> None:
    """Stop a job whose stage record (``--params``' ``_stage``) has the dry-run placeholder as its data
    fingerprint: ``DataError`` with :func:`find_files`' message (the files expected, the folders searched,
    how to get them) while the files are missing; once they are there, a request to start the workflow
    again (the key must cover their content). A no-op for a real fingerprint or no record, so results
    are never written under a key computed without the data."""
    data = (stage or {}).get("data")
    if not (isinstance(data, dict) and data.get("files") == PLACEHOLDER):
        return
    find_files(data["name"], root)  # raises while the files are missing
    raise DataError(
        f"{data['name']}: this job's stage key was computed without the data files (a dry run's placeholder, "
        f"data files {PLACEHOLDER!r}); they are there now: start the workflow again so that the key covers "
        "their content")


def refuse_placeholder_or_exit(stage: dict | None, *, root: str | os.PathLike | None = None) -> None:
    """:func:`refuse_placeholder` for a job's script: ``SystemExit`` with the message (exit status 1)."""
    try:
        refuse_placeholder(stage, root=root)
    except DataError as exc:
        raise SystemExit(str(exc)) from None


def find_files(name: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The files of ``name`` (expected name → path) from the first folder holding all of them.

    Raises :class:`DataError` naming the expected files, every folder searched (with what was
    missing there) and how to get them.
    """
    searched = []
    for folder in candidate_dirs(name, root):
        if not folder.is_dir():
            searched.append(f"  {folder}  (no such folder)")
            continue
        found, missing = _locate(folder, name)
        if not missing:
            return found
        searched.append(f"  {folder}  (missing: {', '.join(missing)})")
    expected = expected_files(name) if name == "cifar10" else [f"{f}[.gz]" for f in expected_files(name)]
    where = f"dataset.root = {str(root)!r}" if root is not None else "dataset.root = null (default locations)"
    raise DataError(
        f"{name}: data files not found ({where}).\n"
        f"Expected, all in one folder: {', '.join(expected)}.\n"
        f"Searched (relative paths are relative to {os.getcwd()}):\n" + "\n".join(searched) + "\n"
        + _how_to_get(name))


# --------------------------------------------------------------------------------------------
# IDX


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from e


def _parse_idx_header(path: Path, head: bytes) -> tuple[int, tuple[int, ...], int]:
    """(magic, dims, header length) of an IDX file; only unsigned-byte files are accepted."""
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, shorter than the 4-byte magic)")
    zero, dtype, ndim = head[:2], head[2], head[3]
    if zero != b"\x00\x00" or dtype != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic {head[:4].hex()}; expected "
                        f"{_IDX_IMAGES:08x} for images or {_IDX_LABELS:08x} for labels)")
    hlen = 4 + 4 * ndim
    if len(head) < hlen:
        raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, shorter than its {hlen}-byte header)")
    magic = struct.unpack(">I", head[:4])[0]
    dims = struct.unpack(f">{ndim}I", head[4:hlen])
    return magic, tuple(int(d) for d in dims), hlen


def read_idx(path: str | os.PathLike, *, kind: str | None = None,
             image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) as a uint8 array of its shape.

    ``kind`` = ``"images"`` or ``"labels"`` requires the matching magic; ``image_shape``
    requires images of that height × width.
    """
    path = Path(path)
    buf = _read_bytes(path)
    magic, dims, hlen = _parse_idx_header(path, buf[:16])
    want = {"images": _IDX_IMAGES, "labels": _IDX_LABELS, None: magic}[kind]
    if magic != want:
        raise DataError(f"{path}: bad magic {magic:08x}: expected {want:08x} ({kind} file)")
    n_bytes = int(np.prod(dims, dtype=np.int64))
    if len(buf) - hlen != n_bytes:
        what = "truncated" if len(buf) - hlen < n_bytes else "corrupt (trailing bytes after the data)"
        raise DataError(f"{path}: {what}: the header says {'x'.join(map(str, dims))} = {n_bytes} bytes of data, "
                        f"the file holds {len(buf) - hlen}")
    if image_shape is not None and magic == _IDX_IMAGES and tuple(dims[1:]) != tuple(image_shape):
        raise DataError(f"{path}: wrong image size {dims[1]}x{dims[2]}: expected "
                        f"{image_shape[0]}x{image_shape[1]}")
    return np.frombuffer(buf, dtype=np.uint8, offset=hlen).reshape(dims)


def _gzip_isize(path: Path) -> int | None:
    """The uncompressed size mod 2**32 from a gzip trailer (None when not gzipped)."""
    with open(path, "rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            return None
        f.seek(0, os.SEEK_END)
        if f.tell() < 18:
            return -1
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def _check_idx(path: Path, *, kind: str, image_shape: tuple[int, int]) -> int:
    """Header checks of one IDX file without reading its data; returns the example count."""
    isize = None
    try:
        isize = _gzip_isize(path)
        if isize is None:
            with open(path, "rb") as f:
                head = f.read(16)
            total = path.stat().st_size
        else:
            with gzip.open(path, "rb") as f:
                head = f.read(16)
            total = None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from e
    magic, dims, hlen = _parse_idx_header(path, head)
    want = _IDX_IMAGES if kind == "images" else _IDX_LABELS
    if magic != want:
        raise DataError(f"{path}: bad magic {magic:08x}: expected {want:08x} ({kind} file)")
    if kind == "images" and tuple(dims[1:]) != tuple(image_shape):
        raise DataError(f"{path}: wrong image size {dims[1]}x{dims[2]}: expected {image_shape[0]}x{image_shape[1]}")
    expected = hlen + int(np.prod(dims, dtype=np.int64))
    if total is not None and total != expected:
        what = "truncated" if total < expected else "corrupt (trailing bytes after the data)"
        raise DataError(f"{path}: {what}: the header says {expected} bytes in all, the file has {total}")
    if isize is not None and isize != expected % 2**32:
        # a damaged trailer, a truncated file or (rarely) a multi-member gzip: decide by reading it all
        read_idx(path, kind=kind, image_shape=image_shape)
    return dims[0]


def _load_idx_split(name: str, files: dict[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = _IDX_FILES[split]
    x = read_idx(files[img_name], kind="images", image_shape=_IMAGE_SHAPE[name])
    y = read_idx(files[lab_name], kind="labels")
    if len(x) != len(y):
        raise DataError(f"{files[lab_name]}: {len(y)} labels, but {files[img_name]} holds {len(x)} images")
    _check_labels(y, files[lab_name])
    return x.reshape(len(x), -1), y.astype(np.int64)


def _check_labels(y: np.ndarray, path) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= N_CLASSES):
        bad = np.unique(y[(y < 0) | (y >= N_CLASSES)])[:5].tolist()
        raise DataError(f"{path}: labels outside 0..{N_CLASSES - 1} (e.g. {bad})")


# --------------------------------------------------------------------------------------------
# CIFAR-10


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _NumpyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers only (no arbitrary code from a foreign file)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise _ForbiddenGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (uint8 images N × 3072, int64 labels N)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _NumpyUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from e
    except _ForbiddenGlobal as e:
        raise DataError(f"{path}: not a CIFAR-10 batch: the pickle references {e} (only numpy arrays and "
                        "plain containers are unpickled)") from e
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, struct.error) as e:
        raise DataError(f"{path}: corrupt or truncated CIFAR-10 batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict) or b"data" not in d or not ({b"labels", b"fine_labels"} & d.keys()):
        keys = sorted(d.keys()) if isinstance(d, dict) else type(d).__name__
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels', got {keys})")
    if b"labels" not in d:
        raise DataError(f"{path}: this is a CIFAR-100 batch (b'fine_labels'), not CIFAR-10")
    x, y = d[b"data"], np.asarray(d[b"labels"])
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2:
        desc = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{path}: b'data' must be a uint8 array N x {_CIFAR_DIM}, got {desc}")
    if x.shape[1] != _CIFAR_DIM:
        raise DataError(f"{path}: wrong image size: {x.shape[1]} values per image, expected {_CIFAR_DIM} (3x32x32)")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: {y.size} labels, but b'data' holds {len(x)} images")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {y.dtype}")
    _check_labels(y, path)
    return x, y.astype(np.int64)


def _load_cifar_split(files: dict[str, Path], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar_batch(files[n]) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _check_cifar(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(2)
    if len(head) < 2 or head[0] != 0x80:  # pickle protocol >= 2 starts with PROTO (0x80)
        raise DataError(f"{path}: not a pickled CIFAR-10 batch (starts with {head.hex() or 'nothing'}, "
                        "expected a pickle)")


# --------------------------------------------------------------------------------------------
# download


def _download_root(name: str, root) -> Path:
    return Path(root).expanduser() if root is not None else Path("data") / name


def _import_torchvision_datasets(name: str):
    """``torchvision.datasets``, imported only when a download is asked for."""
    try:
        import torchvision.datasets as tvd  # noqa: PLC0415 (lazy: optional dependency)
    except Exception as e:  # ImportError, or a torchvision built against another torch
        raise DataError(f"{name}: files are missing and dataset.download is true, but torchvision cannot be "
                        f"imported ({type(e).__name__}: {e}); install a torchvision matching your torch "
                        "(pip install torchvision) or get the files yourself.\n"
                        + _how_to_get(name, download_hint=False)) from e
    return tvd


def _download(name: str, root) -> None:
    target = _download_root(name, root)
    tvd = _import_torchvision_datasets(name)
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        target.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(root=str(target), train=train, download=True)
    except Exception as e:  # network errors, checksum mismatches, disk full, ...
        raise DataError(f"{name}: download into {target} failed ({type(e).__name__}: {e}).\n"
                        + _how_to_get(name, download_hint=False)) from e


# --------------------------------------------------------------------------------------------
# public entry points


def check_dataset_files(name: str, root: str | os.PathLike | None = None, download: bool = False) -> list[str]:
    """Validate that dataset ``name`` can be loaded, cheaply (headers only, no data read).

    Returns the paths that :func:`read_file_dataset` will read. When files are missing and
    ``download`` is true, checks only that torchvision imports and returns the folder the
    download will go to. Raises :class:`DataError` otherwise (see :func:`find_files`).
    """
    _check_name(name)
    try:
        files = find_files(name, root)
    except DataError:
        if not download:
            raise
        _import_torchvision_datasets(name)
        return [str(_download_root(name, root))]
    if name == "cifar10":
        for p in files.values():
            _check_cifar(p)
    else:
        for img, lab in _IDX_FILES.values():
            n_img = _check_idx(files[img], kind="images", image_shape=_IMAGE_SHAPE[name])
            n_lab = _check_idx(files[lab], kind="labels", image_shape=_IMAGE_SHAPE[name])
            if n_img != n_lab:
                raise DataError(f"{files[lab]}: {n_lab} labels, but {files[img]} holds {n_img} images")
    return [str(p) for p in files.values()]


def read_file_dataset(name: str, *, root: str | os.PathLike | None = None, download: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST, Fashion-MNIST or CIFAR-10 from files: ``(x_train, y_train, x_test, y_test)``.

    ``x_*`` are uint8 arrays of shape (n, d), each row an image of :data:`IMAGE_SHAPES` ``[name]``
    flattened channel-major; ``y_*`` int64 labels 0..9 of shape (n,), in file order. Missing files
    are downloaded with torchvision when ``download`` (see the module docstring). Raises
    :class:`DataError` for missing, truncated or corrupt files.
    """
    _check_name(name)
    try:
        files = find_files(name, root)
    except DataError:
        if not download:
            raise
        _download(name, root)
        files = find_files(name, _download_root(name, root))
    if name == "cifar10":
        xtr, ytr = _load_cifar_split(files, _CIFAR_TRAIN)
        xte, yte = _load_cifar_split(files, _CIFAR_TEST)
    else:
        xtr, ytr = _load_idx_split(name, files, "train")
        xte, yte = _load_idx_split(name, files, "test")
    return xtr, ytr, xte, yte
