import numpy as np
import pytest

from conftest import shared_dataset
from unetseg.data.masks import read_mask
from unetseg.infer.rle import rle_decode, rle_encode, write_submission


def test_encoding_is_one_indexed_row_by_row():
    mask = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    assert rle_encode(mask) == "2 3"  # pixels 2, 3 (row 1) and 4 (row 2) are one run
    assert rle_encode(np.zeros((2, 2))) == ""
    assert rle_encode(np.ones((2, 2))) == "1 4"


def test_round_trip_on_random_masks(rng):
    for _ in range(5):
        mask = (rng.random((37, 53)) > 0.5).astype(np.uint8)
        assert np.array_equal(rle_decode(rle_encode(mask), mask.shape), mask)


def test_round_trip_on_real_carvana_masks():
    root = shared_dataset("carvana-fullres")
    for path in sorted((root / "train_masks").iterdir()):
        mask = read_mask(path).mask
        assert mask.shape == (1280, 1918)
        rle = rle_encode(mask)
        assert np.array_equal(rle_decode(rle, mask.shape), mask)
        starts = np.array(rle.split(), int)[::2]
        assert starts[0] >= 1 and np.all(np.diff(starts) > 0)


def test_round_trip_on_generated_masks(sample_dir):
    for path in sorted((sample_dir / "train_masks").iterdir()):
        mask = read_mask(path).mask
        assert np.array_equal(rle_decode(rle_encode(mask), mask.shape), mask)


def test_odd_number_of_values_is_refused():
    with pytest.raises(ValueError, match="pairs"):
        rle_decode("1 2 3", (2, 2))


def test_submission_file(tmp_path):
    write_submission([("a_01.jpg", "1 4"), ("a_02.jpg", "")], tmp_path / "sub.csv")
    assert (tmp_path / "sub.csv").read_text().splitlines() == ["img,rle_mask", "a_01.jpg,1 4", "a_02.jpg,"]
