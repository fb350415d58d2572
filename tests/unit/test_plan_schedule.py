"""The schedule the plan derives from a timed step: it fits the budget, grows with it, and says when it cannot."""

import numpy as np
import pytest

from unetseg.plan.schedule import (
    CALIBRATION_ITEM,
    MAX_EPOCHS,
    MIN_EPOCHS,
    PLANNED_SHARE,
    BudgetError,
    Workload,
    plan_schedule,
)
from unetseg.plan.throughput import Throughput, rounded

WORK = Workload(train_images=384, validation_images=96, batch_size=8, read_seconds=0.01, workers=2,
                validation_items=96, items_per_image=1.0, mirror=True)


def test_the_schedule_fits_the_budget_and_grows_with_it():
    schedules = [plan_schedule(WORK, Throughput(0.5, 0.02), minutes, patches=False) for minutes in (10, 20, 40, 80)]
    for minutes, schedule in zip((10, 20, 40, 80), schedules):
        assert schedule.total <= PLANNED_SHARE * minutes * 60
        assert MIN_EPOCHS <= schedule.epochs <= MAX_EPOCHS
    steps = [s.epochs * s.steps_per_epoch for s in schedules]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    assert schedules[0].steps_per_epoch == 48  # one pass over 384 images in batches of 8
    faster = plan_schedule(WORK, Throughput(0.25, 0.01), 20, patches=False)
    assert faster.epochs * faster.steps_per_epoch > steps[1]


def test_many_images_and_little_time_make_shorter_epochs_then_an_error():
    many = Workload(**{**WORK.__dict__, "train_images": 40_000, "validation_images": 10_000, "validation_items": 10_000})
    short = plan_schedule(many, Throughput(0.05, 0.001), 60, patches=False)
    assert short.epochs == MIN_EPOCHS and short.steps_per_epoch < 40_000 / 8
    with pytest.raises(BudgetError, match="--minutes 3 is too short for 50000 images"):
        plan_schedule(many, Throughput(0.5, 0.02), 3, patches=False)


def test_int8_counts_its_calibration_and_its_timed_network():
    work = Workload(**{**WORK.__dict__, "calibration_items": 300})
    float32 = plan_schedule(work, Throughput(0.5, 0.02), 20, patches=False)
    int8 = plan_schedule(work, Throughput(0.5, 0.02, int8_item=0.005, quantize=4.0), 20, patches=False)
    assert "int8 calibration" not in float32.seconds
    assert int8.seconds["int8 calibration"] == pytest.approx(4.0 + 300 * CALIBRATION_ITEM * 0.02, abs=0.1)
    network = 96 * 2  # 96 validation images, twice with the mirror
    assert float32.seconds["evaluate"] - int8.seconds["evaluate"] == pytest.approx(network * (0.02 - 0.005), abs=0.1)
    assert _besides_training(int8) > _besides_training(float32)  # few small images: calibrating costs more
    # many large images tiled: the faster network gives back more than calibrating takes
    tiled = Workload(**{**work.__dict__, "validation_images": 200, "items_per_image": 20.0})
    slow, fast = (plan_schedule(tiled, Throughput(0.5, 0.02, int8_item=item, quantize=4.0), 20, patches=True)
                  for item in (None, 0.005))
    assert _besides_training(fast) < _besides_training(slow)
    assert fast.epochs * fast.steps_per_epoch > slow.epochs * slow.steps_per_epoch


def _besides_training(schedule) -> float:
    return schedule.total - schedule.seconds["train"]


def test_timings_rounded_to_a_grid_absorb_small_noise():
    assert rounded(0.5) == rounded(0.51) == rounded(0.49)
    assert rounded(0.5) != rounded(0.6)


def test_work_of_other_processes_while_the_steps_are_timed_is_measured_and_said():
    import subprocess
    import sys
    import time

    from unetseg.plan import throughput

    if throughput._machine_busy_seconds() is None:
        pytest.skip("no /proc/stat counting this process's cores: the plan cannot tell, and says nothing")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # running
        result, busy = throughput._busy_elsewhere(lambda: time.sleep(1.5) or "timed")
    finally:
        spinner.kill()
    assert result == "timed" and busy >= 0.7  # the spinner's core, whatever else ran
    note = throughput.Throughput(1.2, 0.01, busy).busy_note()
    assert f"other processes used {busy:.1f} of" in note and "plan again on an idle machine" in note
    assert throughput.Throughput(1.2, 0.01, 0.2).busy_note() == ""
    assert throughput.Throughput(1.2, 0.01, None).busy_note() == ""


def test_the_timed_step_is_the_settled_speed_not_a_slow_start():
    """Three fresh processes timing DSB's planned network (seconds a step after the warm-up): one ran its
    first dozen steps about half as slow again. The plans of such timings once differed 1.7 times."""
    from unetseg.plan.throughput import rounded, settled_time

    slow_start = [0.487, 0.518, 0.485, 0.56, 0.529, 0.609, 0.554, 0.832, 0.695, 0.609, 0.463, 0.594, 0.528, 0.393,
                  0.375, 0.385]
    settled = [0.4, 0.471, 0.445, 0.648, 0.406, 0.382, 0.546, 0.375, 0.377, 0.387, 0.535, 0.376, 0.323, 0.353,
               0.393, 0.416]
    assert rounded(settled_time(slow_start)) == rounded(settled_time(settled)) == 0.386
    assert rounded(float(np.median(slow_start[:7]))) != rounded(float(np.median(settled[:7])))  # as it was timed
    assert settled_time([0.5, 0.1, 0.5, 0.5, 0.5, 0.5]) == 0.5  # one fast step is no settled speed
