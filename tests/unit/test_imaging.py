import numpy as np
import pytest
from PIL import Image

from unetseg.errors import DataError
from unetseg.imaging import read_image, read_mask, resize_image, resize_mask, resize_probabilities


def test_rgb_jpeg_and_greyscale_png(tmp_path, rng):
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    grey = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (6, 8, 3) and np.array_equal(out[..., 1], grey)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 100, 255]


def test_palette_mask_by_index_whatever_the_colours(tmp_path):
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    mask = Image.frombytes("P", (2, 2), indices.tobytes())
    mask.putpalette([0, 0, 0, 128, 0, 0])  # VOC-style dark red foreground
    mask.save(tmp_path / "m.gif")
    assert np.array_equal(read_mask(tmp_path / "m.gif"), indices)


@pytest.mark.parametrize("foreground", [1, 255])
def test_grey_masks_0_1_and_0_255(tmp_path, foreground):
    values = np.array([[0, foreground], [foreground, 0]], np.uint8)
    Image.fromarray(values).save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), (values > 0).astype(np.uint8))


def test_one_bit_mask(tmp_path):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[1, 0]]


def test_not_an_image_names_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is text, not a JPEG")
    with pytest.raises(DataError, match="notes.jpg: cannot decode image"):
        read_image(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match="gone.png: mask file not found"):
        read_mask(tmp_path / "gone.png")


def test_resize_mask_stays_binary(rng):
    mask = (rng.random((37, 53)) > 0.5).astype(np.uint8)
    small = resize_mask(mask, (16, 16))
    assert small.shape == (16, 16) and set(np.unique(small)) <= {0, 1}


def test_resize_mask_keeps_a_majority_region():
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 1
    small = resize_mask(mask, (8, 8))
    assert small[:, :4].all() and not small[:, 4:].any()


def test_resize_image_and_probabilities_shapes(rng):
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert resize_image(image, (16, 8)).shape == (16, 8, 3)
    assert resize_image(image, (30, 40)) is image
    probabilities = rng.random((16, 16)).astype(np.float32)
    assert resize_probabilities(probabilities, (30, 40)).shape == (30, 40)
