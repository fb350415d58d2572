"""The sliding window: stitching is exact, every pixel covered, tiles weighted towards their centre."""

import numpy as np
import pytest

from unetseg.model.applying import blend_weights, sliding_window, stride_of, tile_starts


@pytest.mark.parametrize("shape", [(64, 64), (100, 37), (13, 200), (5, 5), (1, 9), (333, 257)])
@pytest.mark.parametrize("tile, overlap", [((32, 48), 0.5), ((16, 16), 0.0), ((32, 32), 0.75)])
def test_a_model_that_returns_its_input_gives_the_input_back(rng, shape, tile, overlap):
    """Interior, borders, odd sizes and images smaller than one tile alike."""
    image = rng.random(shape + (3,), dtype=np.float32)
    seen = []

    def identity(tiles):
        assert tiles.shape[1:3] == tile  # the model only ever sees whole tiles
        seen.append(len(tiles))
        return tiles

    out = sliding_window(image, identity, tile, overlap, batch=4)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-6)
    assert max(seen) <= 4


def test_channels_of_any_number_come_back_in_place(rng):
    image = rng.random((45, 70, 3), dtype=np.float32)
    out = sliding_window(image, lambda t: np.concatenate([t, 1 - t[..., :1]], axis=-1), (32, 32), 0.5)
    assert out.shape == (45, 70, 4)
    np.testing.assert_allclose(out[..., 3], 1 - image[..., 0], atol=1e-6)


def test_tiles_cover_the_padded_image_and_end_flush():
    assert tile_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert tile_starts(32, 32, 16) == [0] and tile_starts(10, 32, 16) == [0]
    assert stride_of(32, 0.5) == 16 and stride_of(32, 0.0) == 32 and stride_of(4, 0.99) == 1


def test_tile_centres_weigh_most():
    weights = blend_weights((32, 48))
    assert weights.shape == (32, 48) and weights.max() == pytest.approx(1.0)
    assert weights[16, 24] > weights[16, 1] > 0 and weights[0, 0] > 0
    np.testing.assert_allclose(weights, weights[::-1, ::-1], atol=1e-7)  # symmetric


def test_a_tile_edge_artefact_is_blended_away(rng):
    """A model that is wrong on its tiles' outer rows (as zero padding makes a network) errs far less
    after blending than a plain tile grid would."""
    image = rng.random((96, 96, 3), dtype=np.float32)

    def edgy(tiles):
        out = tiles.copy()
        out[:, :2] += 1.0
        out[:, -2:] += 1.0
        return out

    blended = np.abs(sliding_window(image, edgy, (32, 32), 0.5) - image).mean()
    unblended = np.abs(sliding_window(image, edgy, (32, 32), 0.0) - image).mean()
    assert blended < unblended / 3


def test_validation_tiles_are_seeded_spread_over_images_and_padded_as_inference_pads(rng):
    from unetseg.model.applying import pad_for_tiles, sample_tiles

    small = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8), np.ones((10, 12, 1), np.uint8)
    large = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), np.zeros((40, 50, 1), np.uint8)
    images, masks = sample_tiles([small, large], 2, (16, 16), 6, seed=1, ignore=255)
    again = sample_tiles([small, large], 2, (16, 16), 6, seed=1, ignore=255)
    assert images.shape == (6, 16, 16, 3) and masks.shape == (6, 16, 16, 1)
    assert np.array_equal(images, again[0]) and np.array_equal(masks, again[1])
    from_small = [i for i in range(6) if (masks[i] == 1).any()]
    assert len(from_small) == 3  # three tiles from each image
    padded, _ = pad_for_tiles(small[0], (16, 16), (16, 16))
    for i in from_small:  # the small image reflected to one tile, as the sliding window pads it
        assert np.array_equal(images[i], padded) and (masks[i] == 1).sum() == 10 * 12
        assert ((masks[i] == 255).sum() == 16 * 16 - 10 * 12)
    others = [images[i] for i in range(6) if i not in from_small]
    assert any(not np.array_equal(others[0], o) for o in others[1:])  # at several places
