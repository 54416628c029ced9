"""Run I/O: atomic writes, exact CSV round trips, provenance records."""

from __future__ import annotations

import json
import math
import time

from pathlib import Path

import pytest
import torch

from adversary_dynamics.storage import runio


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_atomic_writes_leave_no_temp_files(tmp_path):
    runio.write_text_atomic(tmp_path / "a.txt", "héllo\n")
    runio.write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    runio.write_json_atomic(tmp_path / "sub" / "c.json", {"x": 1.5, "p": tmp_path})  # creates the folder
    runio.save_torch_atomic({"t": torch.arange(3)}, tmp_path / "d.pt")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "sub" / "c.json").read_text()) == {"x": 1.5, "p": str(tmp_path)}
    assert torch.equal(torch.load(tmp_path / "d.pt")["t"], torch.arange(3))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []
    # overwriting replaces the content
    runio.write_text_atomic(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new" and _leftovers(tmp_path) == []


def test_failed_write_keeps_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "table.csv"
    runio.write_text_atomic(target, "old\n")

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with runio.atomic_path(target) as tmp:
            tmp.write_text("partial")
            assert tmp.parent == target.parent and tmp.name.startswith(".table.csv.tmp-")
            raise Boom()
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []
    # a writer that raises inside write_csv_atomic (a row with an unknown column)
    with pytest.raises(ValueError):
        runio.write_csv_atomic(target, [{"a": 1}, {"a": 2, "b": 3}], columns=["a"])
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []
    # also on an interrupt (not an Exception subclass)
    with pytest.raises(KeyboardInterrupt):
        with runio.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []
    # a new file that fails is never created
    with pytest.raises(Boom):
        with runio.atomic_path(tmp_path / "new.json") as tmp:
            tmp.write_text("{")
            raise Boom()
    assert not (tmp_path / "new.json").exists() and _leftovers(tmp_path) == []
    # the same for torch.save of an unpicklable object
    with pytest.raises(Exception):
        runio.save_torch_atomic({"f": lambda: 0}, tmp_path / "state.pt")
    assert not (tmp_path / "state.pt").exists() and _leftovers(tmp_path) == []


def test_csv_round_trips_floats_exactly(tmp_path):
    vals = [0.1, 1 / 3, 2 / 3 * 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.123456789, math.pi,
            float(torch.tensor(0.1, dtype=torch.float32)), float("inf"), float("nan")]
    rows = [{"i": i, "v": v, "s": f"r{i}", "b": i % 2 == 0} for i, v in enumerate(vals)]
    path = tmp_path / "t.csv"
    runio.write_csv_atomic(path, rows)
    back = runio.read_csv(path)
    assert [r["i"] for r in back] == [str(i) for i in range(len(vals))]
    assert list(back[0].keys()) == ["i", "v", "s", "b"]
    for v, r in zip(vals, back):
        got = float(r["v"])
        if math.isnan(v):
            assert math.isnan(got)
        else:
            assert got == v and math.copysign(1, got) == math.copysign(1, v)
    assert [r["s"] for r in back] == [f"r{i}" for i in range(len(vals))]
    # explicit column order; empty tables still get a header
    runio.write_csv_atomic(path, rows[:1], columns=["v", "i", "s", "b"])
    assert path.read_text().splitlines()[0] == "v,i,s,b"
    runio.write_csv_atomic(tmp_path / "empty.csv", [], columns=["a", "b"])
    assert (tmp_path / "empty.csv").read_text() == "a,b\n"


def test_provenance_record(tmp_path):
    started = time.time() - 2.0
    cfg = {"lr": 0.1, "scales": [1, 2]}
    rec = runio.provenance(config=cfg, device="cpu", started=started, extra={"stage": "train"})
    for k in ("config", "code", "packages", "device", "torch_threads", "wall_time_s"):
        assert k in rec, k
    assert rec["config"] == cfg and rec["device"] == "cpu" and rec["stage"] == "train"
    assert rec["torch_threads"] == torch.get_num_threads() == 1
    assert 2.0 <= rec["wall_time_s"] < 60
    assert rec["packages"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert "adversary_dynamics" in rec["packages"]
    sha = rec["code"]["source_sha256"]
    assert len(sha) == 16 and int(sha, 16) >= 0
    assert runio.code_version()["source_sha256"] == sha  # stable
    # serialisable as JSON and unchanged by the round trip
    runio.write_json_atomic(tmp_path / "prov.json", rec)
    back = json.loads((tmp_path / "prov.json").read_text())
    assert back["config"] == cfg and back["code"] == rec["code"]
    # without a start time there is no wall time
    assert "wall_time_s" not in runio.provenance(config=None)


def test_setup_determinism_sets_the_cuda_flags_and_provenance_records_them(monkeypatch):
    """CUDA: deterministic cuDNN without autotuning, deterministic torch algorithms (warn-only),
    cuBLAS's reproducible workspace; CPU: nothing changes. No GPU is needed: only flags are set."""
    import torch

    from adversary_dynamics.pipeline import cli
    from adversary_dynamics.storage import runio

    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        cli.setup_determinism(torch.device("cpu"))
        assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic) == saved[::2]
        assert "CUBLAS_WORKSPACE_CONFIG" not in __import__("os").environ
        cli.setup_determinism("cuda")
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        rec = runio.provenance(device="cpu")
        assert rec["deterministic_algorithms"] is True and rec["cudnn_deterministic"] is True
        assert rec["cublas_workspace_config"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


# ---- issue 19: the CPU (model, vector flags) is recorded, not just "x86_64" ------------------------
INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 amx_tile

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 amx_tile
"""
AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu sse4_2 avx avx2 fma f16c sse4a
"""


def test_cpu_info_tells_an_avx512_cpu_from_an_avx2_only_one(tmp_path):
    (tmp_path / "intel").write_text(INTEL)
    (tmp_path / "amd").write_text(AMD)
    intel, amd = runio.cpu_info(tmp_path / "intel"), runio.cpu_info(tmp_path / "amd")
    assert intel["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert intel["cpu_flags"] == ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                  "avx512_bf16", "amx_tile"]
    assert amd["cpu_model"] == "AMD EPYC 7763 64-Core Processor"
    assert amd["cpu_flags"] == ["sse4_2", "avx", "avx2", "fma", "f16c"]
    assert intel["cpu_capability"] == amd["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_cpu_info_without_cpuinfo_does_not_raise(tmp_path):
    info = runio.cpu_info(tmp_path / "missing")
    assert info["cpu_flags"] is None and info["cpu_model"]  # platform.processor() or machine()
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd sve\nCPU part\t: 0xd40\n")
    arm = runio.cpu_info(tmp_path / "arm")
    assert arm["cpu_flags"] == ["asimd", "sve"] and arm["cpu_model"]


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc/cpuinfo")
def test_provenance_records_this_machines_cpu_model_and_flags():
    text = Path("/proc/cpuinfo").read_text()
    model = next(ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name"))
    flags = set(next(ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")))
    rec = runio.provenance(device="cpu")
    assert rec["cpu_model"] == model and rec["device_name"] == model  # not platform.machine()'s "x86_64"
    assert rec["cpu_flags"] == [f for f in runio.CPU_FLAGS if f in flags]
    assert ("avx2" in rec["cpu_flags"]) == ("avx2" in flags) and ("avx512f" in rec["cpu_flags"]) == ("avx512f" in flags)
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    json.dumps(rec)  # still JSON
