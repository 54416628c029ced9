"""Shared fixtures for the science-core tests.

Every test runs with one torch thread: bit-identity checks (determinism, resume) compare runs
on the same machine and thread count, and small problems are faster single-threaded anyway.
"""

from __future__ import annotations

import pytest
import torch

from adversary_dynamics.learning import data


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Keep one intra-op thread for the whole session (also if something changed it)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def digits_small():
    """A stratified digits subsample: 200 train and 100 test examples, d = 64, values in [0, 1]."""
    return data.load_digits(n_train=200, n_test=100, seed=0)
