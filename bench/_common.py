"""Helpers shared by the benchmark scripts in this folder."""

from __future__ import annotations

import os


def loadavg() -> list[float] | None:
    """1, 5, 15-minute load averages (other work on the machine skews every timing), None if unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def environment(**extra) -> dict:
    """What a timing depends on, for the JSON line: torch (and torchattacks, when importable),
    Python, threads, CPUs, machine, the CPU's model, flags and torch's vector capability
    (:func:`adversary_dynamics.storage.runio.cpu_info`), the thread-count environment variables, the load average at
    the start; ``extra`` entries are added (e.g. device)."""
    import platform

    import torch

    env = {"torch": torch.__version__}
    try:
        import torchattacks

        env["torchattacks"] = torchattacks.__version__
    except ImportError:
        pass
    env.update({"python": platform.python_version(), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                "machine": platform.machine(),
                **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR") if k in os.environ}})
    from adversary_dynamics.storage.runio import cpu_info

    env.update(cpu_info())  # cpu_model, cpu_flags (avx2, avx512f, fma...), cpu_capability: timings differ by CPU
    env.update(extra)
    env["loadavg_start"] = loadavg()
    return env
