"""How fast this machine trains and applies the planned network: a few timed steps, rounded.

Where evaluate and predict will run the network in int8 (`inference.precision`), its
quantization is timed too (on a few random images) and the int8 network's inference: how much
faster int8 runs depends on the machine's instructions and on the network, by far
(docs/results.md#r-data-plan-int8-cost), so it is measured, not assumed.

The network is the one training builds (`build_model`, same params, same
determinism setting), fed random batches of the planned input size: the input
pipeline runs beside it in training and costs little there: on the sample, the
median of a few steps came within a few percent of the steps of the real fit (0.56
against 0.46 to 0.64 s). A fresh process sometimes runs its first dozen steps up to
half as fast again before it settles (docs/results.md#r-data-plan-dsb-seeds), so
the time kept is the fastest median of `WINDOW` consecutive steps: the settled speed,
which training keeps for its thousands of steps. It is rounded to a grid of 10 %
steps, so that the noise between two measurements on one machine rarely moves the
schedule the plan derives from them.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetseg.config.params import Params
from unetseg.core.cpu import cpu_flags
from unetseg.model.runtimes import INT8, OPENVINO, quantize, runtime_network

GRID = 1.1  # times are rounded to a power of this
WARMUP_STEPS = 2  # the first steps trace the graph
TIMED_STEPS = 16  # after them: enough to find a settled stretch
WINDOW = 5  # consecutive steps whose median is one candidate for the settled time
QUANTIZE_SAMPLES = 8  # random images that calibrate the int8 network timed: enough to time it, not to use it


BUSY = 0.5  # cores used by other processes while timing, above which the plan says its schedule is short


@dataclass(frozen=True)
class Throughput:
    train_step: float  # seconds a training step of one batch
    infer_item: float  # seconds to predict one input (an image, or a tile) in batches of the training batch size
    busy_elsewhere: float | None = None  # cores other processes used meanwhile; None where it cannot be told
    int8_item: float | None = None  # the int8 network's seconds an input, where int8 is planned
    quantize: float = 0.0  # seconds to convert, quantize (on a few samples) and compile the network for int8

    def as_record(self) -> dict:
        return {"train_step_seconds": self.train_step, "infer_item_seconds": self.infer_item,
                "int8_item_seconds": self.int8_item, "int8_quantize_seconds": self.quantize,
                "cores_busy_elsewhere": self.busy_elsewhere}

    def busy_note(self) -> str:
        """A clause for the schedule's reason when other work slowed the timed steps: the schedule is then
        shorter than this machine gives when idle, and a user should know to plan again."""
        if self.busy_elsewhere is None or self.busy_elsewhere < BUSY:
            return ""
        return (f"; other processes used {self.busy_elsewhere:.1f} of {len(os.sched_getaffinity(0))} cores "
                "while it was timed: plan again on an idle machine for the full schedule")


def _machine_busy_seconds() -> float | None:
    """CPU seconds the machine's cores have been busy since boot (/proc/stat); None where /proc/stat is
    absent or counts other cores than this process may use (a container on a larger host)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    if sum(line.startswith("cpu") and line[3:4].isdigit() for line in lines) != len(os.sched_getaffinity(0)):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in lines[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _busy_elsewhere(function) -> tuple[object, float | None]:
    """`function()`'s result, and the cores that other processes kept busy while it ran."""
    machine, own, start = _machine_busy_seconds(), os.times(), time.perf_counter()
    result = function()
    machine_after, own_after, wall = _machine_busy_seconds(), os.times(), time.perf_counter() - start
    if machine is None or machine_after is None:
        return result, None
    mine = own_after.user + own_after.system - own.user - own.system
    return result, round(max(0.0, (machine_after - machine - mine) / wall), 1)


def cpu_name() -> str:
    """The processor's model name and its widest vector instructions, for the record of a measurement."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    name = next((line.partition(":")[2].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    flags = cpu_flags(cpuinfo)
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({widest}, {os.cpu_count()} cores)"


def rounded(seconds: float) -> float:
    """`seconds` on the grid of powers of GRID, to three significant digits."""
    value = GRID ** round(math.log(seconds) / math.log(GRID))
    return float(f"{value:.3g}")


def settled_time(times: list[float], window: int = WINDOW) -> float:
    """The smallest median of `window` consecutive times: the speed once a slow start is over."""
    window = min(window, len(times))
    return float(min(np.median(times[i:i + window]) for i in range(len(times) - window + 1)))


def _settled_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return settled_time(times)


def measure_throughput(params: Params, input_size: tuple[int, int], steps: int = TIMED_STEPS) -> Throughput:
    """The settled time of `steps` training steps of `params`' network at `input_size`, after a warm-up."""
    import keras
    import tensorflow as tf

    from unetseg.train.training import build_model

    if params.base.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(params.training_seed)
    model = build_model(params, None, steps_per_epoch=100)
    batch = params.train.batch_size
    classes = len(params.classes.names)
    rng = np.random.default_rng(0)
    images = rng.random((batch, *input_size, 3), dtype=np.float32)
    masks = rng.integers(0, max(classes, 2), (batch, *input_size, 1)).astype(np.float32)
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(images, masks)
    train_step, busy = _busy_elsewhere(lambda: _settled_time(lambda: model.train_on_batch(images, masks), steps))
    model.predict_on_batch(images)
    infer_batch = _settled_time(lambda: model.predict_on_batch(images), steps)
    int8_item, quantize_seconds = None, 0.0
    if params.inference.precision == INT8:  # evaluate and predict run the int8 network: its speed, and its making
        start = time.perf_counter()
        samples = rng.integers(0, 256, (QUANTIZE_SAMPLES, *input_size, 3), dtype=np.uint8)
        network = runtime_network(model, OPENVINO, INT8, quantize(model, samples, {}))
        quantize_seconds = rounded(time.perf_counter() - start)
        network.predict_on_batch(images)
        int8_item = rounded(_settled_time(lambda: network.predict_on_batch(images), steps) / batch)
    keras.backend.clear_session()
    return Throughput(rounded(train_step), rounded(infer_batch / batch), busy, int8_item, quantize_seconds)
