"""TensorFlow's start-up, without the lines that read as failures on a machine without a GPU.

Importing TensorFlow and asking for its devices prints, straight to the process's
stderr and whatever TF_CPP_MIN_LOG_LEVEL says (TensorFlow logs through absl before
absl's logging is set up): "All log messages before absl::InitializeLog()", the oneDNN
and "Could not find cuda drivers" notices, and `E... failed call to cuInit` on every
machine without a GPU. A new user reads the E line as a failure. So, unless the user
set TensorFlow's own logging variable, unetseg sets it to 2 (warnings and errors of
TensorFlow's Python side only) and passes the process's stderr through a filter
while TensorFlow loads and finds its devices: those start-up lines go, every other
line goes on, as it comes, through a filter process of its own (so a crash during the
import still shows its last words). The one error line dropped is cuInit's "UNKNOWN
ERROR (303)", what a machine without a GPU driver gives; other CUDA failures show.
Training runs inside the same filter (`native_logs_filtered`): once its graph is built,
TensorFlow prints `E... oneDNN supports DT_INT32 only on platforms with AVX-512. Falling
back to the default Eigen-based implementation` on CPUs without AVX-512, another E line
that is no failure. The filter process has a session of its own, so a Ctrl-C meant for
the run does not stop it before it has passed on the run's last lines.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
OURS = "UNETSEG_TF_LOG_LEVEL"  # the value unetseg set, inherited by the stages DVC starts from a unetseg process
# absl's INFO/WARNING lines (what level 2 asks to hide), and the no-GPU "error"
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit: .*UNKNOWN ERROR \(303\)"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|E\d{4} [\d:.]+ +\d+ util\.cc:\d+\] oneDNN supports DT_\w+ only on platforms with AVX-512\. Falling back)"
)


def is_noise(line: str) -> bool:
    return bool(_NOISE.match(line))


# The filter runs in a small process of its own: it drains the pipe whatever the importing process
# does (a native crash, a long C call that holds the GIL), so no line is lost and nothing blocks.
_FILTER = """import re, sys
noise = re.compile(sys.argv[1])
for line in sys.stdin.buffer:
    if not noise.match(line.decode(errors="replace")):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


class _FilteredStderr:
    """Points file descriptor 2 at a pipe whose reader, a filter process, drops noise lines and forwards
    the rest to the real stderr; does nothing where there is no usable stderr or Python to run."""

    def __enter__(self):
        self.saved = self.filter = None
        try:
            os.fstat(2)
        except OSError:
            return self
        if not sys.executable:
            return self
        if sys.stderr is not None:
            sys.stderr.flush()
        self.saved = os.dup(2)
        read, write = os.pipe()
        try:
            self.filter = subprocess.Popen([sys.executable, "-I", "-c", _FILTER, _NOISE.pattern], stdin=read,
                                           stdout=self.saved, close_fds=True, start_new_session=True)
        except OSError:
            os.close(write)
            os.close(read)
            os.close(self.saved)
            self.saved = None
            return self
        os.close(read)
        os.dup2(write, 2)
        os.close(write)
        return self

    def __exit__(self, *exc_info):
        if self.saved is None:
            return
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes our last write end of the pipe: the filter reads to its end
        os.close(self.saved)  # the filter holds its own copy
        try:
            self.filter.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a child process still holds the pipe: the filter ends with it
            pass


class _QuietImport(importlib.abc.MetaPathFinder):
    """Loads `tensorflow`, the first time anything imports it, inside the filter."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # the real finder does the work
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if self.finder in sys.meta_path:  # one import only (a mere probe, find_spec, does not use it up)
            sys.meta_path.remove(self.finder)
        with _FilteredStderr():
            self.loader.exec_module(module)
            try:
                module.config.list_physical_devices()  # where the cuInit line comes from
            except Exception:  # noqa: BLE001 - the devices are listed again, and reported, where they matter
                pass


def _chosen_by_user() -> bool:
    return LOG_LEVEL in os.environ and os.environ.get(OURS) != os.environ[LOG_LEVEL]


@contextmanager
def native_logs_filtered():
    """The noise lines dropped from the process's stderr while the block runs, unless the user chose
    TensorFlow's log level (main thread only: the file descriptors are the process's)."""
    if _chosen_by_user() or threading.current_thread() is not threading.main_thread():
        yield
        return
    with _FilteredStderr():
        yield


def quiet_tensorflow_start() -> None:
    """Filter TensorFlow's start-up lines, unless the user chose its log level or it is loaded already."""
    if _chosen_by_user() or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL] = os.environ[OURS] = "2"
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
