"""Datasets and the input scale as the paper defines it (Sec. 5.1).

Every dataset yields flattened inputs ``(n, C·H·W)`` with values in [0, 1] (image datasets;
:attr:`Dataset.image_shape` = (C, H, W)) or unit-norm rows (the Gaussian setting, no image
shape) *before scaling*. The input scale s is the mean l_p norm of the training inputs,
s = (1/n) Σᵢ ‖xᵢ‖_p (:func:`mean_norm`, p of the threat model); a scale is set by one global
rescaling x ← x · s / mean_norm(x_train) (:func:`rescale_to_scale`, :func:`rescale_dataset`;
train and test with the training set's factor), and the threat radius is ε = ratio · s
(:func:`epsilon`), the paper's ε = r · (1/n) Σᵢ ‖xᵢ‖_p.

* ``digits``: scikit-learn's embedded UCI handwritten digits (1,797 images of 8×8, d = 64,
  values 0–16 divided by 16), split into train/test by a stratified, seeded split.
* ``gaussian``: x ~ N(0, I_d) normalised to ‖x‖ = 1 (so ‖s·x‖ = s), labels from a random
  teacher two-layer network (argmax over its K outputs; sign of its output for K = 1).
* file-based datasets (MNIST, Fashion-MNIST, CIFAR-10) are read by the pure file readers of
  :mod:`adversary_dynamics.storage.datasets` and turned into a :class:`Dataset` by
  :func:`load_file_dataset` (pixel / 255, stratified seeded subsampling).

Module dependencies: this module imports :mod:`~adversary_dynamics.storage.datasets` (which imports
nothing from the package); :class:`Dataset` and :func:`stratified_indices` live here only.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adversary_dynamics.storage import datasets as _files

__all__ = [
    "Dataset",
    "DATASETS",
    "load_dataset",
    "load_digits",
    "load_file_dataset",
    "gaussian_inputs",
    "teacher_labels",
    "make_gaussian",
    "stratified_indices",
    "NORMS",
    "mean_norm",
    "rescale_to_scale",
    "rescale_dataset",
    "epsilon",
]

DATASETS = ("digits", "gaussian", "mnist", "fashion_mnist", "cifar10")


@dataclass
class Dataset:
    """Flattened inputs (float32) and integer labels, split into train and test.

    ``x_train`` (n_train, d), ``x_test`` (n_test, d); ``image_shape`` = (C, H, W) with
    C·H·W = d for image datasets (rows are the channel-major flattening), None otherwise
    (gaussian, simulated data).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple[int, int, int] | None = None

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[-1])

    def to(self, device) -> "Dataset":
        return dataclasses.replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                                   x_test=self.x_test.to(device), y_test=self.y_test.to(device))


NORMS = ("l2", "linf")


def mean_norm(x: torch.Tensor, *, norm: str = "l2") -> float:
    """The input scale of ``x``: (1/n) Σᵢ ‖xᵢ‖_p over the rows xᵢ = ``x[..., i, :]`` of ``x`` (shape
    (n, d), or any (*batch, d): the mean is over all rows), p = 2 (``"l2"``) or ∞ (``"linf"``);
    accumulated in float64. Paper Sec. 5.1. Raises ValueError for an unknown ``norm`` or an
    empty ``x``."""
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not allowed: choose one of {NORMS}")
    if x.ndim < 1 or x.numel() == 0:
        raise ValueError(f"x must hold at least one row of shape (d,), got shape {tuple(x.shape)}")
    ord_ = 2 if norm == "l2" else math.inf
    return float(torch.linalg.vector_norm(x.to(torch.float64), ord=ord_, dim=-1).mean())


def rescale_to_scale(x: torch.Tensor, *, scale: float, reference: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """x · (s / mean_norm(reference)): the global rescaling that gives ``reference`` (the training
    inputs) mean l_p norm s = ``scale`` (paper Sec. 5.1); apply it with the same ``reference`` to
    train and test inputs. Same shape and dtype as ``x``. Raises ValueError naming ``scale`` when
    it is not > 0 and ``reference`` when its mean norm is 0."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    m = mean_norm(reference, norm=norm)
    if not m > 0:
        raise ValueError(f"reference has mean {norm} norm {m}: cannot rescale it to scale {scale}")
    return x * (float(scale) / m)


def rescale_dataset(ds: Dataset, *, scale: float, norm: str = "l2") -> Dataset:
    """``ds`` with train and test inputs rescaled by the training set's factor s / mean_norm(x_train),
    so that the training inputs have mean l_p norm ``scale`` (:func:`rescale_to_scale`)."""
    return dataclasses.replace(
        ds, x_train=rescale_to_scale(ds.x_train, scale=scale, reference=ds.x_train, norm=norm),
        x_test=rescale_to_scale(ds.x_test, scale=scale, reference=ds.x_train, norm=norm))


def epsilon(*, ratio: float, scale: float) -> float:
    """Threat radius ε = ratio × s (the perturbation ratio is fixed across scales)."""
    if not ratio > 0:
        raise ValueError(f"ratio must be > 0, got {ratio!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return float(ratio) * float(scale)


STEP_RULES = ("relative", "absolute")


def check_step_rule(rule: str) -> None:
    if rule not in STEP_RULES:
        raise ValueError(f"step_rule={rule!r} is not allowed: choose one of {STEP_RULES}")


def step_length(*, step_size: float, eps, rule: str = "relative"):
    """PGA step η: ``relative`` η = step_size · ε (scale-free), ``absolute`` η = step_size at every
    scale. ``eps`` is a float or a tensor; a tensor gives a tensor of its shape either way."""
    check_step_rule(rule)
    if rule == "relative":
        return step_size * eps
    return torch.full_like(eps, step_size) if torch.is_tensor(eps) else step_size


def stratified_indices(labels: np.ndarray, n: int | None, *, seed: int) -> np.ndarray:
    """Indices of a seeded, stratified subsample of size n (all, in order, when n is None).

    Each class keeps its share of n (largest remainders get the leftover), so class balance
    is preserved; the same labels, n and seed always give the same indices.
    """
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        if n is not None and n > len(labels):
            raise ValueError(f"asked for {n} examples but only {len(labels)} are available")
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"subsample size must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    rest = n - take.sum()
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:rest]] += 1
    out = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        out.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(out))


def _digits_array() -> np.ndarray:
    """The 1,797 × 65 array (64 pixels, then the label) that ``sklearn.datasets.load_digits``
    reads: scikit-learn's embedded ``digits.csv.gz``, read directly so that a job does not pay
    for importing scikit-learn (~2 s per process)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits dataset ships with scikit-learn: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    return np.loadtxt(path, delimiter=",")


def load_digits(*, n_train: int | None = None, n_test: int | None = None, test_fraction: float = 0.2,
                seed: int = 0) -> Dataset:
    """scikit-learn's digits, flattened to d = 64 and mapped to [0, 1] (pixel / 16)."""
    raw = _digits_array()
    x = raw[:, :-1].astype(np.float32) / 16.0
    y = raw[:, -1].astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):  # stratified split: test_fraction of every class
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        test[rng.choice(idx, size=k, replace=False)] = True
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    tr = stratified_indices(ytr, n_train, seed=seed)
    te = stratified_indices(yte, n_test, seed=seed + 1)
    return Dataset("digits", torch.from_numpy(xtr[tr]), torch.from_numpy(ytr[tr]),
                   torch.from_numpy(xte[te]), torch.from_numpy(yte[te]), 10, image_shape=(1, 8, 8))


def gaussian_inputs(n: int, d: int, *, generator: torch.Generator | None = None, device="cpu",
                    dtype=torch.float32) -> torch.Tensor:
    """n rows x ~ N(0, I_d), each normalised to ‖x‖₂ = 1."""
    z = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)


def teacher_labels(x: torch.Tensor, *, n_classes: int, width: int = 64,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels from a random teacher two-layer ReLU net: argmax of its K outputs, or for
    ``n_classes == 1`` the sign (±1, as float) of its scalar output."""
    from adversary_dynamics.learning.models import TwoLayerNet

    k = 1 if n_classes == 1 else n_classes
    teacher = TwoLayerNet(input_dim=x.shape[-1], width=width, n_outputs=k, generator=generator,
                          device=x.device, dtype=x.dtype)
    with torch.no_grad():
        out = teacher(x * np.sqrt(x.shape[-1]))  # rows of norm √d, so pre-activations are O(1)
    if n_classes == 1:
        return torch.where(out[:, 0] >= 0, 1.0, -1.0).to(x.dtype)
    return out.argmax(-1)


def make_gaussian(*, d: int, n_train: int, n_test: int, n_classes: int = 10, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = gaussian_inputs(n_train + n_test, d, generator=g)
    y = teacher_labels(x, n_classes=n_classes, generator=g)
    return Dataset("gaussian", x[:n_train], y[:n_train], x[n_train:], y[n_train:], max(n_classes, 1),
                   image_shape=None)


def load_file_dataset(name: str, *, root: str | os.PathLike | None = None, n_train: int | None = None,
                      n_test: int | None = None, seed: int = 0, download: bool = False) -> Dataset:
    """MNIST, Fashion-MNIST or CIFAR-10 from files as a flattened [0, 1] :class:`Dataset` (pixel / 255,
    ``image_shape`` (1, 28, 28) or (3, 32, 32)).

    ``n_train`` / ``n_test`` take stratified, seeded subsamples (:func:`stratified_indices` with
    ``seed`` and ``seed + 1``); None keeps the whole split in file order. Raises
    :class:`~adversary_dynamics.storage.datasets.DataError` for missing or bad files and for a subsample
    larger than its split.
    """
    xtr, ytr, xte, yte = _files.read_file_dataset(name, root=root, download=download)
    try:
        tr = stratified_indices(ytr, n_train, seed=seed)
        te = stratified_indices(yte, n_test, seed=seed + 1)
    except ValueError as e:
        raise _files.DataError(f"{name}: cannot subsample (n_train={n_train}, n_test={n_test}; the files hold "
                               f"{len(ytr)} training and {len(yte)} test examples): {e}") from e

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / np.float32(255.0))

    return Dataset(name, to_tensor(xtr[tr]), torch.from_numpy(ytr[tr].copy()), to_tensor(xte[te]),
                   torch.from_numpy(yte[te].copy()), _files.N_CLASSES, image_shape=_files.IMAGE_SHAPES[name])


def load_dataset(name: str, *, root: str | None = None, n_train: int | None = None, n_test: int | None = None,
                 seed: int = 0, dim: int = 64, download: bool = False) -> Dataset:
    """Load a dataset by name (see :data:`DATASETS`); inputs unscaled, flattened, ``image_shape`` set
    (digits (1, 8, 8), MNIST / Fashion-MNIST (1, 28, 28), CIFAR-10 (3, 32, 32), gaussian None)."""
    if name == "digits":
        return load_digits(n_train=n_train, n_test=n_test, seed=seed)
    if name == "gaussian":
        return make_gaussian(d=dim, n_train=n_train or 1000, n_test=n_test or 500, seed=seed)
    if name in _files.FILE_DATASETS:
        return load_file_dataset(name, root=root, n_train=n_train, n_test=n_test, seed=seed, download=download)
    raise ValueError(f"unknown dataset {name!r}: choose one of {DATASETS}")
