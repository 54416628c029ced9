"""Datasets and the input-scale transform.

Every dataset yields flattened inputs with values in [0, 1] (image datasets) or unit-norm
rows (the Gaussian setting) *before scaling*; :func:`scale_inputs` then multiplies by the
input scale s, and the threat radius is ε = ratio · s (:func:`epsilon`).

* ``digits``: scikit-learn's embedded UCI handwritten digits (1,797 images of 8×8, d = 64,
  values 0–16 divided by 16), split into train/test by a stratified, seeded split.
* ``gaussian``: x ~ N(0, I_d) normalised to ‖x‖ = 1 (so ‖s·x‖ = s), labels from a random
  teacher two-layer network (argmax over its K outputs; sign of its output for K = 1).
* file-based datasets (MNIST, Fashion-MNIST, CIFAR-10) are read by
  :mod:`adversary_dynamics.datasets` and dispatched from :func:`load_dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Dataset",
    "DATASETS",
    "load_dataset",
    "load_digits",
    "gaussian_inputs",
    "teacher_labels",
    "make_gaussian",
    "stratified_indices",
    "scale_inputs",
    "epsilon",
]

DATASETS = ("digits", "gaussian", "mnist", "fashion_mnist", "cifar10")


@dataclass
class Dataset:
    """Flattened inputs (float32, unscaled) and integer labels, split into train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[-1])

    def to(self, device) -> "Dataset":
        return Dataset(self.name, self.x_train.to(device), self.y_train.to(device),
                       self.x_test.to(device), self.y_test.to(device), self.n_classes)


def scale_inputs(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The input-scale transform x ↦ s·x."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return x * scale


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
                   torch.from_numpy(xte[te]), torch.from_numpy(yte[te]), 10)


def gaussian_inputs(n: int, d: int, *, generator: torch.Generator | None = None, device="cpu",
                    dtype=torch.float32) -> torch.Tensor:
    """n rows x ~ N(0, I_d), each normalised to ‖x‖₂ = 1."""
    z = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)


def teacher_labels(x: torch.Tensor, *, n_classes: int, width: int = 64,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels from a random teacher two-layer ReLU net: argmax of its K outputs, or for
    ``n_classes == 1`` the sign (±1, as float) of its scalar output."""
    from .models import TwoLayerNet

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
    return Dataset("gaussian", x[:n_train], y[:n_train], x[n_train:], y[n_train:], max(n_classes, 1))


def load_dataset(name: str, *, root: str | None = None, n_train: int | None = None, n_test: int | None = None,
                 seed: int = 0, dim: int = 64, download: bool = False) -> Dataset:
    """Load a dataset by name (see :data:`DATASETS`); inputs unscaled, flattened."""
    if name == "digits":
        return load_digits(n_train=n_train, n_test=n_test, seed=seed)
    if name == "gaussian":
        return make_gaussian(d=dim, n_train=n_train or 1000, n_test=n_test or 500, seed=seed)
    if name in ("mnist", "fashion_mnist", "cifar10"):
        from . import datasets

        return datasets.load_file_dataset(name, root=root, n_train=n_train, n_test=n_test, seed=seed,
                                          download=download)
    raise ValueError(f"unknown dataset {name!r}: choose one of {DATASETS}")
