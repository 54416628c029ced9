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
