"""CPU kernel settings: chosen from the CPU's features before TensorFlow loads; the user's choice wins."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unetseg.core.cpu import ONEDNN, cpu_flags, kernel_settings

AVX2 = {"sse4_2", "avx", "avx2", "fma"}


def test_flags_are_read_from_cpuinfo():
    text = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n"
    assert cpu_flags(text) == {"fpu", "sse2", "avx2", "fma"}
    assert cpu_flags("Features\t: fp asimd\n") == {"fp", "asimd"}  # Arm's name for it
    assert cpu_flags("") == set()


def test_onednn_on_x86_with_avx2_and_fma_only():
    assert kernel_settings(AVX2, "x86_64", {}) == {ONEDNN: "1"}
    assert kernel_settings(AVX2 | {"avx512f", "avx512_vnni"}, "x86_64", {}) == {ONEDNN: "1"}
    assert kernel_settings({"sse4_2", "avx"}, "x86_64", {}) == {}  # no AVX2: TensorFlow's own choice
    assert kernel_settings({"fp", "asimd"}, "aarch64", {}) == {}


def test_the_users_setting_wins():
    assert kernel_settings(AVX2, "x86_64", {ONEDNN: "0"}) == {}


def _in_fresh_python(environ):
    code = "import os, unetseg, tensorflow; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.mark.skipif(os.uname().machine != "x86_64" or not Path("/proc/cpuinfo").exists(),
                    reason="reads an x86-64 CPU's flags from /proc/cpuinfo")
def test_set_before_tensorflow_loads_unless_the_user_chose():
    environ = {k: v for k, v in os.environ.items() if k != ONEDNN}
    # the rule, read from /proc/cpuinfo here, not through the functions under test
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M)[1].split())
    expected = "1" if {"avx2", "fma"} <= flags else "None"
    assert _in_fresh_python(environ) == expected
    assert _in_fresh_python({**environ, ONEDNN: "0"}) == "0"
