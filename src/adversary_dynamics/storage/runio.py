"""Run I/O: atomic writes (temporary file in the same folder, then rename), tables, and
provenance records (config, code version, package versions, device, threads, wall time)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = [
    "cpu_info",
    "input_size_mb",
    "atomic_path",
    "link_or_copy_atomic",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "write_csv_atomic",
    "read_csv",
    "save_torch_atomic",
    "code_version",
    "provenance",
]

_PACKAGES = ("adversary_dynamics", "torch", "numpy", "pandas", "scikit-learn", "snakemake", "papermill",
             "matplotlib", "seaborn")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash leaves only the temporary file (named ``.<name>.tmp-*``), never a truncated
    file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def link_or_copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` the same file as ``src``: a hard link (no extra space), a copy where the
    file system cannot link; atomically (:func:`atomic_path`)."""
    import shutil

    with atomic_path(dst) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv_atomic(path, rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> None:
    """Write rows (dicts) as CSV; floats are written with repr, so values round-trip exactly."""
    rows = list(rows)
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(path, buf.getvalue())


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save_torch_atomic(obj: Any, path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _source_hash() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


#: What "the code" is for ``git_dirty``: everything a run executes or reads as instructions.
CODE_PATHS = ("src", "scripts", "workflow", "notebooks", "config", "Snakefile", "pyproject.toml")


def code_version() -> dict[str, Any]:
    """git commit and whether the code (:data:`CODE_PATHS`) differs from it, where available, plus a
    hash of the library's source files, which identifies the library even outside a git checkout.
    Outputs that runs write into the checkout (figures/) do not make it dirty."""
    out: dict[str, Any] = {"source_sha256": _source_hash()}
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            # dirty = the code differs from the commit; the outputs a run writes (figures/) do not count
            st = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                 *CODE_PATHS], capture_output=True, text=True, timeout=10)
            out["git_dirty"] = bool(st.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _versions() -> dict[str, str]:
    v = {}
    for p in _PACKAGES:
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return v


def input_size_mb(input) -> float:
    """The total size in MB (2**20 bytes) of a Snakemake job's ``input`` files, for resource
    functions (``mem_mb``, ``runtime``): ``input.size_mb`` outside a running asyncio event loop.
    Inside one (``snakemake --report`` evaluates every reported job's resources there) Snakemake's
    ``input.size_mb`` creates a coroutine, cannot run it (NestedCoroutineError, which Snakemake
    turns into "to be determined") and leaves it unawaited, so Python prints "coroutine ... was never
    awaited" once per job; here the sizes are read directly with ``os.path.getsize`` instead, and
    where an input does not exist yet NestedCoroutineError is raised without a coroutine, so
    Snakemake still defers the value as before."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return input.size_mb
    try:
        return sum(os.path.getsize(f) for f in input) / 2 ** 20
    except OSError:
        from snakemake.exceptions import NestedCoroutineError

        raise NestedCoroutineError("input sizes are known once the inputs exist") from None


#: CPU features that change which kernels torch (oneDNN, MKL, its own vectorised code) runs, and so
#: the last bits of a result: recorded by :func:`cpu_info` when the CPU has them.
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
             "neon", "asimd", "sve", "sve2")


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """The CPU a run used, as far as it changes floating-point results: ``cpu_model`` (the first
    ``model name`` of ``cpuinfo``; on machines without one, e.g. ARM or not Linux,
    ``platform.processor()`` or ``platform.machine()``), ``cpu_flags`` (the :data:`CPU_FLAGS` the
    CPU has, from the ``flags``/``Features`` line, in that order; None when ``cpuinfo`` cannot be
    read) and ``cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``, the vector
    instruction set torch's own kernels use: e.g. AVX512 or AVX2; None where torch cannot say).
    Never raises for a missing or odd ``cpuinfo``."""
    model, flags = None, None
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    if text is not None:
        present: set[str] = set()
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            if not sep:
                continue
            if key == "model name" and model is None and value.strip():
                model = value.strip()
            elif key in ("flags", "features") and not present:
                present = set(value.split())
        flags = [f for f in CPU_FLAGS if f in present]
    if not model:
        model = platform.processor() or platform.machine() or None
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # an old torch without it, or no torch
        capability = None
    return {"cpu_model": model, "cpu_flags": flags, "cpu_capability": capability}


def _precision_record() -> dict[str, Any]:
    from adversary_dynamics.pipeline.devices import precision_record

    return precision_record()


def provenance(*, config: Mapping[str, Any] | None = None, device: Any = None, started: float | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A provenance record for a run: config, code version, package versions, device (on CPU,
    ``device_name`` is the CPU model), the CPU's model, relevant flags and torch's vector
    capability (:func:`cpu_info`; recorded on GPU runs too: the host CPU does part of the work),
    thread count, host, and wall time since ``started`` (a ``time.time()`` value)."""
    import torch

    dev = str(device) if device is not None else "cpu"
    cpu = cpu_info()
    rec: dict[str, Any] = {
        "config": dict(config) if config is not None else None,
        "code": code_version(),
        "packages": _versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": dev,
        "device_name": (torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda")
                        else cpu["cpu_model"] or platform.machine()),
        **cpu,
        "torch_threads": torch.get_num_threads(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # GPUs the scheduler granted
        # deterministic kernels (cli.setup_determinism; CPU kernels are deterministic per thread count)
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        # config key `precision` and the TF32 / matmul / autocast settings in effect, read back from torch
        # (adversary_dynamics.pipeline.devices.precision_record)
        "precision": _precision_record(),
        "command": sys.argv,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if started is not None:
        rec["wall_time_s"] = round(time.time() - started, 3)
    if extra:
        rec.update(extra)
    return rec


def checkpoint_path(run_dir, epoch: int) -> Path:
    """Where a training run keeps the weights after ``epoch`` epochs: ``<run_dir>/checkpoints/epoch_NNNN.pt``
    (epoch 0: at initialisation). Here, not in :mod:`training`, so that the probes that read checkpoints
    do not depend on the training code."""
    return Path(run_dir) / "checkpoints" / f"epoch_{int(epoch):04d}.pt"
