"""TensorFlow's CPU kernel settings, chosen once, before TensorFlow is imported.

TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI,
BF16 or AMX; on the AVX2 CPUs most people have (AMD EPYC and Ryzen before Zen 4,
most laptops and cloud VMs) it takes a slower path unless TF_ENABLE_ONEDNN_OPTS=1 is
set before it loads. Measured with `benchmarks/train.py` (default model, training):
13.3 -> 20.9 images/s on a 2-core AVX2 EPYC. So unetseg sets it on any x86-64 CPU
with AVX2 and FMA, and leaves TensorFlow's own choice everywhere else. A value the
user set in the environment always wins.

With oneDNN on, a rerun on the same machine stays bit-identical
(`base.deterministic`; tests/pipeline/test_resume.py compares the model files byte
for byte); results still differ between CPUs, as floating-point sums do.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
_chosen: dict[str, str] = {}  # what unetseg set, for the log


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def kernel_settings(flags: set[str], machine: str, environ) -> dict[str, str]:
    """The variables to set: oneDNN on x86-64 with AVX2 and FMA, unless the user chose already."""
    if ONEDNN in environ:
        return {}
    if machine.lower() in ("x86_64", "amd64") and {"avx2", "fma"} <= flags:
        return {ONEDNN: "1"}
    return {}


def configure_cpu_kernels() -> None:
    """Set the chosen variables, if TensorFlow is not loaded yet (afterwards they would not apply)."""
    if "tensorflow" in sys.modules:
        return
    settings = kernel_settings(cpu_flags(), platform.machine(), os.environ)
    os.environ.update(settings)
    _chosen.update(settings)


def describe() -> str:
    """One line for the training log: the kernel settings in force and who chose them."""
    value = os.environ.get(ONEDNN)
    if value is None:
        return f"CPU kernels: TensorFlow's default ({ONEDNN} not set; no AVX2+FMA x86-64 CPU found)"
    who = "set by unetseg: AVX2 and FMA found" if ONEDNN in _chosen else "set in your environment"
    return f"CPU kernels: {ONEDNN}={value} ({who})"
