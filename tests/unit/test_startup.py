"""TensorFlow's start-up lines: gone from a run on a CPU machine, there when the user asks TensorFlow for them."""

import os
import subprocess
import sys

from unetseg.core.startup import LOG_LEVEL, OURS, is_noise

# as TensorFlow 2.21 prints them on a machine without a GPU
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796128854.085119   17427 port.cc:153] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:1796128854.085495   17427 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796128858.033931   17427 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    # once a class model trains, on a CPU without AVX-512
    "E0000 00:00:1764764000.123456   4242 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
]
CODE = (  # a probe for the package first (as libraries do) must not use the filter up
    "import importlib.util, sys, unetseg; importlib.util.find_spec('tensorflow');"
    "print('before', file=sys.stderr); import tensorflow as tf;"
    "print('after', file=sys.stderr); tf.constant(1).numpy(); tf.config.list_physical_devices()"
)


def test_only_the_start_up_lines_are_noise():
    assert all(is_noise(line) for line in STARTUP)
    for line in ["E0000 00:00:1796128858.03 17427 op_kernel.cc:1830] OP_REQUIRES failed: out of memory",
                 "E0000 00:00:1796128858.03 17427 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
                 "E0000 00:00:1796128858.03 17427 util.cc:131] oneDNN primitive creation failed",
                 "error: params.yaml: train.lr: must be > 0", "Traceback (most recent call last):", ""]:
        assert not is_noise(line), line


def _stderr(environ) -> list[str]:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=environ)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.splitlines()


def test_a_fresh_process_prints_its_own_lines_and_none_of_tensorflows():
    environ = {k: v for k, v in os.environ.items() if k not in (LOG_LEVEL, OURS)}
    assert _stderr(environ) == ["before", "after"]
    # and in a process started from one (a stage DVC runs), which inherits unetseg's setting
    assert _stderr(environ | {LOG_LEVEL: "2", OURS: "2"}) == ["before", "after"]


def test_a_user_who_sets_the_log_level_gets_what_they_asked_for():
    environ = {k: v for k, v in os.environ.items() if k != LOG_LEVEL} | {LOG_LEVEL: "0", OURS: "2"}
    lines = _stderr(environ)
    assert lines[0] == "before" and "after" in lines
    assert any(is_noise(line) for line in lines)  # TensorFlow's own lines, unfiltered


FILTERED = (  # a block inside the filter, a Ctrl-C for the whole process group in it
    "import os, signal, sys, time, unetseg; from unetseg.core.startup import native_logs_filtered\n"
    "with native_logs_filtered():\n"
    f"    os.write(2, {STARTUP[-1]!r}.encode() + b'\\nkept\\n')\n"
    "    signal.signal(signal.SIGINT, lambda *a: None); os.killpg(0, signal.SIGINT); time.sleep(0.2)\n"
    "    os.write(2, b'after the interrupt\\n')\n"
    "print('outside', file=sys.stderr)"
)


def test_a_block_can_run_inside_the_filter_and_a_ctrl_c_does_not_stop_the_filter():
    environ = {k: v for k, v in os.environ.items() if k not in (LOG_LEVEL, OURS)}
    run = subprocess.run([sys.executable, "-c", FILTERED], capture_output=True, text=True, env=environ,
                         start_new_session=True)  # its own process group, for the Ctrl-C
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.splitlines() == ["kept", "after the interrupt", "outside"]
    chosen = environ | {LOG_LEVEL: "1"}  # the user's choice is theirs: nothing filtered
    run = subprocess.run([sys.executable, "-c", FILTERED], capture_output=True, text=True, env=chosen,
                         start_new_session=True)
    assert "DT_INT32" in run.stderr
