"""How far a mean per-image score could move with another draw of validation objects.

A validation score is the mean over a few dozen objects' images; another draw of
objects from the same population would give another mean. The percentile bootstrap
here measures that: it redraws *groups* (objects — the 16 views of one car are one
draw, not 16 independent ones) with replacement, recomputes the mean over all images
of the drawn groups (each image counts once, as in `dice`), and reports the middle
`confidence` of those means. Resampling images instead would treat correlated views
as independent evidence and give intervals that are too narrow.

What it does not measure: training randomness (another seed, another shuffle). Those
move the score too; `unetseg spread` measures them over reseeded experiments.

Pure NumPy and vectorised: 2,000 resamples of 100 groups take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unetseg.core.errors import UnetsegError

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"

# Resamples are drawn in blocks so that a (resamples x groups) matrix of counts never
# exceeds about this many cells (5,088 ungrouped images x 2,000 resamples would be 80 MB).
_BLOCK_CELLS = 1_000_000


class UncertaintyError(UnetsegError):
    """Values that cannot be bootstrapped (empty, non-finite, a single group, mismatched lengths)."""


@dataclass(frozen=True)
class PairedDifference:
    """The mean of b - a over paired images, its bootstrap interval and what it says."""

    difference: float
    low: float
    high: float
    confidence: float
    verdict: str


def _group_codes(values: np.ndarray, groups) -> np.ndarray:
    """0..G-1 for each image's group; each image is its own group when `groups` is None."""
    if groups is None:
        return np.arange(len(values))
    groups = np.asarray(groups)
    if groups.shape != values.shape:
        raise UncertaintyError(f"{len(values)} value(s) but {groups.size} group label(s)")
    return np.unique(groups, return_inverse=True)[1].ravel()


def bootstrap_means(values, groups=None, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """`resamples` means of `values`, each over the images of as many groups drawn with replacement.

    A resample draws G groups out of G (a multinomial count per group); its mean is the
    sum of the drawn groups' values over the number of their images, so every image
    counts once, as in the score itself. Deterministic given `seed`.
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise UncertaintyError("no values to bootstrap")
    if not np.isfinite(values).all():
        raise UncertaintyError(f"{int((~np.isfinite(values)).sum())} non-finite value(s) among {values.size}")
    if resamples < 1:
        raise UncertaintyError(f"resamples must be at least 1, not {resamples}")
    codes = _group_codes(values, groups)
    sums = np.bincount(codes, weights=values)
    counts = np.bincount(codes).astype(float)
    n_groups = len(sums)
    if n_groups < 2:
        raise UncertaintyError(
            f"{values.size} value(s) in {n_groups} group: an interval needs at least 2 groups"
        )
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n_groups)
    uniform = np.full(n_groups, 1.0 / n_groups)
    means = np.empty(resamples)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        drawn = rng.multinomial(n_groups, uniform, size=stop - start).astype(float)  # (block, groups)
        means[start:stop] = (drawn @ sums) / (drawn @ counts)
    return means


def group_bootstrap_interval(values, groups=None, resamples: int = 2000, seed: int = 0,
                             confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) for the mean of per-image `values`, redrawing `groups`.

    `groups` holds one label per value (e.g. the car id of each view); None treats
    each image as its own group. The interval covers the mean of another draw of
    objects; see the module docstring for what it leaves out.
    """
    if not 0.0 < confidence < 1.0:
        raise UncertaintyError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    means = bootstrap_means(values, groups, resamples, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """"better" when the whole interval of b - a lies above 0, "worse" below, otherwise no difference."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_DIFFERENCE


def paired_difference(a, b, groups=None, resamples: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> PairedDifference:
    """Mean of b - a over the same images, with its group bootstrap interval and verdict.

    Pairing removes what both runs share (hard images stay hard), so the interval of
    the difference is much narrower than either score's. Identical inputs give
    exactly [0, 0] and "no detectable difference".
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise UncertaintyError(f"paired scores differ in length: {a.size} and {b.size}")
    differences = b - a
    low, high = group_bootstrap_interval(differences, groups, resamples, seed, confidence)
    return PairedDifference(float(differences.mean()), low, high, confidence, verdict(low, high))
