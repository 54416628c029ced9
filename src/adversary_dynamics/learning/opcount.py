"""Deterministic counts of tensor operations and host synchronisations, on any device (also CPU).

On a GPU, a training loop pays per tensor operation (one kernel launch each, microseconds of
host time however small the kernel) and per host synchronisation (the host waits for the device
to drain its queue; it also rules out CUDA graph capture). Both are properties of the program,
not of the machine, so they can be counted on a CPU, exactly and repeatably, as the proxy for a
GPU's launch-bound cost (bench/train_speed.py, tests/test_stacked_training.py).

:class:`OpCounter` is a ``TorchDispatchMode``: it sees every ATen operation below autograd (the
forward ops, the backward ops autograd runs, the optimiser's ops), one call each.

* ``ops``: every operation dispatched (views and in-place ops included; each is one dispatcher
  call, and most are one kernel launch on a GPU).
* ``syncs``: the operations that make the host read a value the device computed, each of which
  synchronises host and device on a GPU: ``aten._local_scalar_dense`` (``.item()``, ``float(t)``,
  ``bool(t)``, ``if t:``), ``aten.nonzero``, ``aten.masked_select``, indexing with a boolean mask
  (``aten.index`` / ``aten.index_put`` with a bool index, whose result size depends on the
  values), ``aten._unique2`` / ``unique_dim`` / ``unique_consecutive``, plus every
  ``Tensor.tolist()`` and ``Tensor.numpy()`` (which read memory directly and are not dispatched;
  they are wrapped while the counter is active).

On a CPU none of these waits for anything; the counts say what a GPU run of the same code would do.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OpCounter"]

_aten = torch.ops.aten
_SYNC_PACKETS = {_aten._local_scalar_dense, _aten.nonzero, _aten.masked_select, _aten._unique2, _aten.unique_dim,
                 _aten.unique_consecutive}
_MASK_INDEX = {_aten.index, _aten.index_put, _aten.index_put_}


def _bool_index(args) -> bool:
    idx = args[1] if len(args) > 1 else None
    return isinstance(idx, (list, tuple)) and any(
        isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8) for t in idx)


class OpCounter(TorchDispatchMode):
    """Count ATen operations and host synchronisations inside ``with OpCounter() as c:``.

    Attributes after (or during) the block: ``ops`` (int), ``syncs`` (int), ``by_op`` (Counter of
    operation names), ``sync_ops`` (Counter of the synchronising operations' names). Deterministic
    for a deterministic program. Not thread-safe; nests like any dispatch mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.syncs = 0
        self.by_op: Counter = Counter()
        self.sync_ops: Counter = Counter()
        self._saved = None

    def _sync(self, name: str) -> None:
        self.syncs += 1
        self.sync_ops[name] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket.__name__)
        self.ops += 1
        self.by_op[name] += 1
        packet = func.overloadpacket
        if packet in _SYNC_PACKETS or (packet in _MASK_INDEX and _bool_index(args)):
            self._sync(name)
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        counter = self
        orig_tolist, orig_numpy = torch.Tensor.tolist, torch.Tensor.numpy

        def tolist(t, *a, **k):
            counter._sync("tolist")
            return orig_tolist(t, *a, **k)

        def numpy(t, *a, **k):
            counter._sync("numpy")
            return orig_numpy(t, *a, **k)

        self._saved = (orig_tolist, orig_numpy)
        torch.Tensor.tolist, torch.Tensor.numpy = tolist, numpy
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            torch.Tensor.tolist, torch.Tensor.numpy = self._saved
