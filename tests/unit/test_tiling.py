"""The sliding window: stitching is exact, every pixel covered, tiles weighted towards their centre."""

import numpy as np
import pytest

from unetseg.tiling import blend_weights, sliding_window, stride_of, tile_starts


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
