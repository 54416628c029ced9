#!/usr/bin/env python
"""A figure's provenance: its tables' provenance.json plus the notebook's kernel (name, interpreter).

Usage: python scripts/figure_provenance.py TABLES_PROVENANCE OUT KERNEL_NAME. Run by the figure's
notebook rule with the same ``python`` the kernel spec ``workflow/jupyter/kernels/<KERNEL_NAME>``
starts (its argv is ``python -m ipykernel_launcher``, found on the job's PATH), so ``sys.executable``
here is the notebook's interpreter. Imports nothing heavy; writes atomically (storage.runio)."""

from __future__ import annotations

import json
import os
import platform
import sys


def main(argv=None) -> int:
    src, out, kernel = (sys.argv[1:] if argv is None else argv)
    record = json.loads(open(src, encoding="utf-8").read())
    record["notebook_kernel"] = {"name": kernel, "interpreter": sys.executable,
                                 "python": platform.python_version(),
                                 "kernel_spec": os.path.join("workflow", "jupyter", "kernels", kernel, "kernel.json")}
    from adversary_dynamics.storage.runio import write_json_atomic  # no torch: starts in milliseconds

    write_json_atomic(out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
