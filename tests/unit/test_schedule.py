"""The learning-rate schedule: a warm-up, then constant, cosine or polynomial decay to zero."""

import keras
import numpy as np
import pytest

from unetseg.train.schedule import WarmupDecay, learning_rate


def _rates(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in range(steps)])


@pytest.mark.parametrize("shape", ["cosine", "poly"])
def test_decays_rise_over_the_warm_up_then_fall_to_about_zero_at_the_last_step(shape):
    rates = _rates(WarmupDecay(1e-3, total_steps=100, warmup_steps=10, shape=shape), 100)
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert np.all(np.diff(rates[:10]) > 0) and np.all(np.diff(rates[10:]) < 0)
    assert rates[-1] < 0.05e-3  # the last step trains at under 5 % of the peak


def test_constant_with_a_warm_up_holds_the_peak_after_it():
    rates = _rates(WarmupDecay(2e-3, total_steps=20, warmup_steps=4, shape="constant"), 20)
    assert rates[:4] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3]) and rates[4:] == pytest.approx([2e-3] * 16)


def test_a_constant_rate_without_warm_up_stays_a_number_that_reduce_on_plateau_may_change():
    assert learning_rate(1e-3, "constant", 5, 10, 0) == 1e-3
    schedule = learning_rate(1e-3, "cosine", 5, 10, 0.5)
    assert isinstance(schedule, WarmupDecay) and (schedule.total_steps, schedule.warmup_steps) == (50, 5)


def test_the_schedule_is_a_function_of_the_step_alone_so_a_resumed_run_continues_it():
    """A backup restores the optimizer's step count; the rate at a step does not depend on the history."""
    optimizer = keras.optimizers.Adam(learning_rate=WarmupDecay(1e-3, 40, 4, "cosine"))
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer.build([variable])
    for _ in range(17):
        optimizer.apply([keras.ops.ones(3)], [variable])
    restored = keras.optimizers.Adam(learning_rate=WarmupDecay(1e-3, 40, 4, "cosine"))
    restored.build([variable])
    restored.iterations.assign(17)
    assert float(optimizer.learning_rate) == pytest.approx(float(restored.learning_rate))
    assert float(optimizer.learning_rate) == pytest.approx(_rates(WarmupDecay(1e-3, 40, 4, "cosine"), 18)[17])
