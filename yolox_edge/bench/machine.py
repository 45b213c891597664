"""Describe the machine a benchmark ran on: CPU, ISA flags that matter, OS, runtimes."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

from .cores import core_clusters, describe_clusters, describe_cores

# Flags that change which kernels a runtime can use, x86 and Arm (as /proc/cpuinfo names them).
X86_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
# A 64-bit kernel says asimd for NEON, a 32-bit one (Raspberry Pi OS 32-bit, armv7l/armv8l) neon.
ARM_FLAGS = {"asimd": "neon", "neon": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "asimdhp": "fp16", "sve": "sve",
             "bf16": "bf16"}
# Environment variables that change the kernels or threads a runtime uses: a result is only
# comparable with another taken under the same ones (e.g. ONEDNN_MAX_CPU_ISA keeps OpenVINO's
# and torch's oneDNN off AMX, which ran Nano INT8 ~20 % slower on an AMX Xeon VM).
ENV_KNOBS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE", "OMP_NUM_THREADS",
             "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RUNTIMES = ("torch", "onnxruntime", "openvino", "ncnn", "nncf", "numpy", "opencv-python-headless")


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if ":" in line:
            k, v = (s.strip() for s in line.split(":", 1))
            info.setdefault(k, v)
    return info


def cpu_flags(info: dict[str, str] | None = None) -> list[str]:
    """The ISA features relevant to inference kernels, in portable names (neon, dotprod, ...)."""
    info = _cpuinfo() if info is None else info
    raw = set((info.get("flags") or info.get("Features") or "").split())
    found = [f for f in X86_FLAGS if f in raw]
    found += [name for f, name in ARM_FLAGS.items() if f in raw]
    if platform.machine().lower() in ("arm64", "aarch64", "armv8l") and "neon" not in found:
        found.insert(0, "neon")  # Armv8-A always has Advanced SIMD, also under a 32-bit userland
    return list(dict.fromkeys(found))


def runtime_versions() -> dict[str, str]:
    out = {}
    for name in RUNTIMES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def describe_machine() -> dict:
    """A JSON-able description of this machine for benchmark reports."""
    info = _cpuinfo()
    model = info.get("model name") or info.get("Hardware") or info.get("Model") or platform.processor() or ""
    try:
        import psutil
        physical = psutil.cpu_count(logical=False)
        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil is optional at run time on exotic boards
        physical, mem_gb = None, None
    clusters = core_clusters()
    if model in ("", "unknown", platform.machine()):  # Arm kernels often name no model: say which cores
        model = describe_clusters(clusters) or describe_cores() or "unknown"
    return {"cpu": model, "arch": platform.machine(), "logical_cores": os.cpu_count(), "physical_cores": physical,
            "memory_gb": mem_gb, "isa": cpu_flags(info), "os": platform.platform(),
            "python": platform.python_version(), "runtimes": runtime_versions(),
            "clusters": clusters, "cores": describe_clusters(clusters),
            "env": {k: os.environ[k] for k in ENV_KNOBS if k in os.environ}}
