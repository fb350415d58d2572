"""Evaluate's scores accumulated image by image: the gallery's picks as a sort of every image would make
them, and images with nothing to score left out of every mean, interval, comparison and picture."""

import numpy as np
import pandas as pd
import pytest

from unetseg.compare.pairing import pair_runs
from unetseg.core.constants import IGNORE
from unetseg.evaluate.class_metrics import confusion, per_image_scores, summarize_classes
from unetseg.evaluate.evaluation import intervals
from unetseg.evaluate.scoring import GalleryPicks


@pytest.mark.parametrize("size", [1, 3, 10])
def test_the_gallery_kept_while_streaming_is_the_one_a_sort_of_every_image_gives(rng, size):
    dice = np.round(rng.random(60), 1)  # many ties: the order among equals matters
    picks = GalleryPicks(size)
    for index, value in enumerate(dice):
        picks.offer(float(value), index)
    order = np.argsort(dice, kind="stable")
    worst, best = list(order[:size]), list(order[::-1][:size])
    expected = worst + [i for i in best if i not in worst]
    assert [panel for panel, _ in picks.panels()] == expected
    assert [d for _, d in picks.panels()] == [dice[i] for i in expected]
    assert len(picks.kept) <= 2 * size  # the pictures of the others were let go


def test_an_image_with_every_pixel_ignored_scores_nothing_not_a_perfect_one():
    truth = np.array([[0, 1], [1, 0]], np.uint8)
    wrong = confusion(truth, 1 - truth, 2)  # every pixel wrong: dice 0
    void = confusion(np.full((2, 2), IGNORE, np.uint8), np.zeros((2, 2), np.uint8), 2)
    dice, iou, _ = per_image_scores(np.stack([wrong, void]))
    assert dice[0] == 0 and np.isnan(dice[1]) and np.isnan(iou[1])
    metrics = summarize_classes(np.stack([wrong, void]), ["a", "b"])
    assert metrics["dice"] == 0.0 and metrics["iou"] == 0.0  # not 0.5: the void image is in no mean
    picks = GalleryPicks(2)
    picks.offer(float(dice[0]), "wrong")
    picks.offer(float(dice[1]), "void")
    assert [panel for panel, _ in picks.panels()] == ["wrong"]


def test_images_with_nothing_to_score_are_no_sample_of_the_interval(rng):
    groups = [f"g{i // 2}" for i in range(40)]
    scores = rng.random(40)
    table = pd.DataFrame({"group": groups, "dice": scores, "original_dice": scores})
    with_void = pd.concat([table, pd.DataFrame({"group": ["v1", "v2"], "dice": [np.nan] * 2,
                                                "original_dice": [np.nan] * 2})], ignore_index=True)
    assert intervals(with_void, 500, 0) == intervals(table, 500, 0)


def test_a_comparison_leaves_out_images_neither_run_could_score():
    a = pd.DataFrame({"id": ["x", "y", "z"], "group": ["1", "2", "3"], "dice": [0.5, np.nan, 0.7]})
    b = pd.DataFrame({"id": ["x", "y", "z"], "group": ["1", "2", "3"], "dice": [0.6, np.nan, 0.9]})
    paired = pair_runs(a, b, "dice")
    assert paired["id"].tolist() == ["x", "z"] and paired["difference"].round(6).tolist() == [0.1, 0.2]
