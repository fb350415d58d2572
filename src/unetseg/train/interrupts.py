"""Ctrl-C during training, honoured every time.

Keras converts each batch's logs to floats inside a bare `except:` (keras
`utils/python_utils.pythonify_logs`), which swallows a KeyboardInterrupt raised
there: training then ran on to its end, saved the model and exited 0, or a logger
met the unconverted tensors. So while the fit runs, SIGINT only raises a flag, and
the first callback raises KeyboardInterrupt at the next batch or epoch edge, after
the logs are converted and before any later callback (the backup, the curves) sees
them. No model is written after an interrupt; the backup of the last whole epoch
resumes the run as usual. A second Ctrl-C raises at once.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

import keras


class Interrupted:
    def __init__(self):
        self.pending = False

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt("training interrupted (Ctrl-C): no model written")


@contextmanager
def interrupts_deferred():
    """Yield an `Interrupted` flag that SIGINT sets while the block runs (main thread only: elsewhere
    Python delivers no signal, and the flag stays down)."""
    interrupted = Interrupted()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum, frame):
        if interrupted.pending:  # asked twice: stop now, wherever it lands
            raise KeyboardInterrupt
        interrupted.pending = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
    interrupted.check()  # a Ctrl-C after the last edge still writes nothing


class StopOnInterrupt(keras.callbacks.Callback):
    """Raise the deferred Ctrl-C at each batch and epoch edge; first in the list, so no later callback
    acts on a step that was asked to stop."""

    def __init__(self, interrupted: Interrupted):
        super().__init__()
        self.interrupted = interrupted

    def on_train_batch_end(self, batch, logs=None):
        self.interrupted.check()

    def on_test_batch_end(self, batch, logs=None):
        self.interrupted.check()

    def on_epoch_begin(self, epoch, logs=None):
        self.interrupted.check()

    def on_epoch_end(self, epoch, logs=None):
        self.interrupted.check()
