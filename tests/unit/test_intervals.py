"""Bootstrap intervals over groups: coverage, pairing, group vs image resampling, determinism."""

import time

import numpy as np
import pytest

from unetseg.evaluate import intervals
from unetseg.evaluate.intervals import (
    NO_DIFFERENCE,
    UncertaintyError,
    bootstrap_means,
    group_bootstrap_interval,
    paired_difference,
)


def correlated_views(rng, groups=30, views=4, mean=0.9, between=0.02, within=0.005):
    """Per-image scores whose views share their object's effect (as a car's 16 views do)."""
    effects = rng.normal(0.0, between, groups)
    values = mean + np.repeat(effects, views) + rng.normal(0.0, within, groups * views)
    return values, np.repeat([f"car{g}" for g in range(groups)], views)


def test_interval_covers_the_true_mean_at_about_the_nominal_rate(rng):
    covered = 0
    for draw in range(300):
        values, groups = correlated_views(rng)
        low, high = group_bootstrap_interval(values, groups, resamples=1000, seed=draw)
        covered += low <= 0.9 <= high
    assert 0.90 <= covered / 300 <= 0.99


def test_image_resampling_is_too_narrow_when_views_are_correlated(rng):
    """Why groups: treating a car's views as independent understates the intervals."""
    values, groups = correlated_views(rng)
    by_group = np.subtract(*group_bootstrap_interval(values, groups)[::-1])
    by_image = np.subtract(*group_bootstrap_interval(values, None)[::-1])
    assert by_group > 1.5 * by_image  # about sqrt(1 + 3 * 0.94) = 1.95 here
    covered_by_image = 0
    for draw in range(200):
        values, _ = correlated_views(rng)
        low, high = group_bootstrap_interval(values, None, resamples=500, seed=draw)
        covered_by_image += low <= 0.9 <= high
    assert covered_by_image / 200 < 0.85


def test_each_image_counts_once_not_each_group():
    # One group of 1 image scoring 0, one of 9 images scoring 1: any resample's mean is
    # 0, 1 or 9/10 (both groups); averaging group means would give 1/2 for the mixed draw.
    values = np.array([0.0] + [1.0] * 9)
    groups = ["a"] + ["b"] * 9
    means = bootstrap_means(values, groups, resamples=500, seed=1)
    assert set(np.round(means, 12)) == {0.0, 0.9, 1.0}


def test_identical_runs_give_a_zero_width_interval_and_no_difference(rng):
    values, groups = correlated_views(rng)
    result = paired_difference(values, values.copy(), groups)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.verdict == NO_DIFFERENCE


def test_planted_improvement_and_degradation_are_detected(rng):
    a, groups = correlated_views(rng)
    gain = paired_difference(a, a + rng.normal(0.004, 0.002, a.size), groups)
    assert gain.verdict == "better" and 0 < gain.low < 0.004 < gain.high
    loss = paired_difference(a, a - rng.normal(0.004, 0.002, a.size), groups)
    assert loss.verdict == "worse" and loss.low < -0.004 < loss.high < 0
    noise = paired_difference(a, a + rng.normal(0.0, 0.002, a.size), groups)
    assert noise.verdict == NO_DIFFERENCE and noise.low < 0 < noise.high


def test_paired_interval_is_narrower_than_either_score_s():
    rng = np.random.default_rng(3)
    a, groups = correlated_views(rng)
    b = a + rng.normal(0.001, 0.002, a.size)  # hard objects stay hard
    low, high = group_bootstrap_interval(a, groups)
    result = paired_difference(a, b, groups)
    assert result.high - result.low < (high - low) / 3


def test_deterministic_given_the_seed(rng):
    values, groups = correlated_views(rng)
    assert group_bootstrap_interval(values, groups, seed=7) == group_bootstrap_interval(values, groups, seed=7)
    assert group_bootstrap_interval(values, groups, seed=7) != group_bootstrap_interval(values, groups, seed=8)


def test_drawing_in_blocks_changes_nothing(rng, monkeypatch):
    values = rng.random(300)
    whole = bootstrap_means(values, None, resamples=100, seed=2)
    monkeypatch.setattr(intervals, "_BLOCK_CELLS", 300 * 7)  # blocks of 7 resamples
    np.testing.assert_allclose(bootstrap_means(values, None, resamples=100, seed=2), whole, rtol=1e-12)


def test_fast_enough_for_the_evaluate_stage(rng):
    values, groups = correlated_views(rng, groups=25, views=4)
    start = time.perf_counter()
    group_bootstrap_interval(values, groups, resamples=2000, seed=0)
    assert time.perf_counter() - start < 0.5  # milliseconds when the machine is idle


@pytest.mark.parametrize(
    "values, groups, message",
    [
        ([], None, "no values"),
        ([0.5, np.nan, 0.7], None, "1 non-finite"),
        ([0.5, 0.6, 0.7], ["a", "a", "a"], "at least 2 groups"),
        ([0.5, 0.6], ["a"], "2 value(s) but 1 group"),
    ],
)
def test_values_that_cannot_be_bootstrapped_are_refused(values, groups, message):
    with pytest.raises(UncertaintyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        group_bootstrap_interval(values, groups)


def test_confidence_and_lengths_are_checked():
    with pytest.raises(UncertaintyError, match="confidence"):
        group_bootstrap_interval([0.1, 0.2], None, confidence=95)
    with pytest.raises(UncertaintyError, match="differ in length: 2 and 3"):
        paired_difference([0.1, 0.2], [0.1, 0.2, 0.3])
