"""TensorFlow's start-up, without the lines that read as failures on a machine without a GPU.

Importing TensorFlow and asking for its devices prints, straight to the process's
stderr and whatever TF_CPP_MIN_LOG_LEVEL says (TensorFlow logs through absl before
absl's logging is set up): "All log messages before absl::InitializeLog()", the oneDNN
and "Could not find cuda drivers" notices, and `E... failed call to cuInit` on every
machine without a GPU. A new user reads the E line as a failure. So, unless the user
set TensorFlow's own logging variable, unetseg sets it to 2 (warnings and errors of
TensorFlow's Python side only) and passes the process's stderr through a filter
while TensorFlow loads and finds its devices: those start-up lines go, every other
line goes on, as it comes (a crash during the import still shows its last words).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import threading

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
OURS = "UNETSEG_TF_LOG_LEVEL"  # the value unetseg set, inherited by the stages DVC starts from a unetseg process
# absl's INFO/WARNING lines (what level 2 asks to hide), and the no-GPU "error"
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_noise(line: str) -> bool:
    return bool(_NOISE.match(line))


class _FilteredStderr:
    """Points file descriptor 2 at a pipe whose reader drops noise lines and forwards the rest."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.reader = threading.Thread(target=self._forward, args=(read,), daemon=True)
        self.reader.start()
        return self

    def _forward(self, read: int) -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode(errors="replace")):
                    os.write(self.saved, line)

    def __exit__(self, *exc_info):
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last write end: the reader ends
        self.reader.join(timeout=5)
        os.close(self.saved)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Loads `tensorflow`, the first time anything imports it, inside the filter."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; the real finder does the work
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _FilteredStderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # where the cuInit line comes from


def quiet_tensorflow_start() -> None:
    """Filter TensorFlow's start-up lines, unless the user chose its log level or it is loaded already."""
    chosen_by_user = LOG_LEVEL in os.environ and os.environ.get(OURS) != os.environ[LOG_LEVEL]
    if chosen_by_user or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL] = os.environ[OURS] = "2"
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
