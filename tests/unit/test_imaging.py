"""Every reasonable image and mask is read by a stated rule; every bad one is named."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from unetseg.core.application import RESIZE, Application, check_model_application
from unetseg.core.errors import DataError
from unetseg.data.decoding import IMAGE_SUFFIXES, read_image
from unetseg.data.masks import read_mask
from unetseg.data.resize import resize_image, resize_mask, resize_probabilities
from unetseg.model.applying import model_input


def _save(tmp_path, name, array_or_image, **kwargs):
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(tmp_path / name, **kwargs)
    return tmp_path / name


# Images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.png", "a.bmp", "a.tif", "a.gif", "a.webp", "a.ppm"])
def test_lossless_formats_read_exactly(tmp_path, rng, name):
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    if name.endswith(".gif"):  # GIF is a palette format: a few colours survive exactly
        rgb = np.repeat(np.repeat(rgb[:1, :2], 3, axis=0), 4, axis=1)
    saved = _save(tmp_path, name, rgb, **({"lossless": True} if name.endswith(".webp") else {}))
    assert saved.suffix in IMAGE_SUFFIXES and np.array_equal(read_image(saved), rgb)


def test_greyscale_is_repeated_over_three_channels(tmp_path, rng):
    grey = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    out = read_image(_save(tmp_path, "g.png", grey))
    assert out.shape == (6, 8, 3) and all(np.array_equal(out[..., c], grey) for c in range(3))


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    assert read_image(_save(tmp_path, "a.png", rgba))[0, 0].tolist() == [200, 0, 0]


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    assert read_image(_save(tmp_path, "deep.png", values))[0, :, 0].tolist() == [0, 100, 255]


def test_16_bit_images_of_a_12_bit_camera_are_read_from_their_bits(tmp_path):
    """A 12-bit micrograph in a 16-bit file read as 16-bit keeps 17 grey levels; read by data.image_bits
    12 it keeps its 4096 levels as 256, white at 4095, and the model application carries the rule."""
    levels = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    path = _save(tmp_path, "micrograph.png", levels)
    assert len(np.unique(read_image(path))) == 17  # what the default bits make of it: 0 to 16
    grey, info = read_image(path, bits=12, with_info=True)
    assert len(np.unique(grey)) == 256 and grey.min() == 0 and grey.max() == 255 and info.top == 4095
    application = Application(RESIZE, (64, 64), image_bits=12)
    assert np.array_equal(model_input(path, application)[0], grey)
    assert Application.from_record(application.as_record()) == application
    assert Application.from_record({"mode": RESIZE, "size": [64, 64], "scale": 1.0, "overlap": 0.0}).image_bits == 16
    with pytest.raises(TypeError, match="image_bits None"):  # the model file's reader names the file with it
        Application.from_record({"mode": RESIZE, "size": [64, 64], "scale": 1.0, "overlap": 0.0, "image_bits": None})
    with pytest.raises(DataError, match=r"micrograph\.png: a level of 4095 .* data\.image_bits 10: .* need data\.image_bits 12"):
        read_image(path, bits=10)
    with pytest.raises(DataError, match="16-bit images read as 12-bit"):  # a 12-bit model is not fed 16-bit reads
        check_model_application(Application(RESIZE, (64, 64)), application, "params.yaml", "the model file")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = _save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)), quality=95)  # red
    pixel = read_image(path)[4, 4]
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_palette_image_becomes_its_colours(tmp_path):
    image = Image.frombytes("P", (2, 1), bytes([0, 1]))
    image.putpalette([10, 20, 30, 200, 100, 50])
    assert read_image(_save(tmp_path, "p.png", image)).tolist() == [[[10, 20, 30], [200, 100, 50]]]


def test_exif_orientation_turns_image_and_mask_together(tmp_path):
    image = np.zeros((2, 4, 3), np.uint8)
    image[0, 0] = 255  # a white top-left pixel
    mask = np.zeros((2, 4), np.uint8)
    mask[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    read = read_image(_save(tmp_path, "photo.jpg", image, exif=exif, quality=100))
    reading = read_mask(_save(tmp_path, "photo.png", mask, exif=exif))
    assert read.shape == (4, 2, 3) and reading.mask.shape == (4, 2)
    assert read[0, 1].min() > 200 and reading.mask[0, 1] == 1  # the same corner in both


# Broken files --------------------------------------------------------------------------------


def _jpeg_bytes(rng, size=(64, 48)):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_truncated_jpeg_is_named(tmp_path, rng):
    data = _jpeg_bytes(rng)
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * 0.95)])
    with pytest.raises(DataError, match="cut.jpg: cannot decode image"):
        read_image(tmp_path / "cut.jpg")


def test_png_with_a_bad_crc_is_named(tmp_path, rng):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # one byte of the compressed pixels: the chunk's CRC no longer matches
    (tmp_path / "crc.png").write_bytes(bytes(data))
    with pytest.raises(DataError, match="crc.png: cannot decode"):
        read_mask(tmp_path / "crc.png")


@pytest.mark.parametrize("content", [b"", b"this is a text file, saved as .jpg"])
def test_empty_file_or_not_an_image_is_named(tmp_path, content):
    (tmp_path / "notes.jpg").write_bytes(content)
    with pytest.raises(DataError, match="notes.jpg: cannot decode image"):
        read_image(tmp_path / "notes.jpg")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="gone.png: mask file not found"):
        read_mask(tmp_path / "gone.png")


def _bomb_png(width=20000, height=20000) -> bytes:
    """A small 1-bit PNG that declares width x height: zero rows, compressed."""

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" * (1 + width // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    from PIL import ImageFile

    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_png())
    assert path.stat().st_size < 100_000
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(DataError, match=r"bomb.png: image declares 20000x20000 = 400,000,000 pixels, over the limit"):
        read_image(path, max_pixels=50_000_000)
    with pytest.raises(DataError, match="bomb.png: mask declares 20000x20000"):
        read_mask(path, max_pixels=50_000_000)
    assert decoded == []  # refused before any of the 400 million pixels is decoded


# Masks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [(0, 1), (0, 255), (0, 128), (30, 220)])
def test_two_grey_levels_lower_is_background(tmp_path, levels):
    values = np.array([[levels[0], levels[1]], [levels[1], levels[0]]], np.uint8)
    reading = read_mask(_save(tmp_path, "m.png", values))
    assert reading.mask.tolist() == [[0, 1], [1, 0]] and reading.nonbinary == 0


def test_16_bit_mask(tmp_path):
    values = np.array([[0, 65535]], np.uint16)
    assert read_mask(_save(tmp_path, "m.png", values)).mask.tolist() == [[0, 1]]


def test_palette_mask_by_index_whatever_the_colours(tmp_path):
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    mask = Image.frombytes("P", (2, 2), indices.tobytes())
    mask.putpalette([0, 0, 0, 128, 0, 0])  # VOC-style dark red foreground, darker than 50 % grey
    assert np.array_equal(read_mask(_save(tmp_path, "m.png", mask)).mask, indices)


def test_voc_palette_with_a_border_class_is_refused(tmp_path):
    indices = np.array([[0, 1, 255]], np.uint8)
    mask = Image.frombytes("P", (3, 1), indices.tobytes())
    mask.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192])
    with pytest.raises(DataError, match="voc.png: palette mask uses 3 indices .* but the model is binary"):
        read_mask(_save(tmp_path, "voc.png", mask))


def test_label_map_with_three_classes_is_refused(tmp_path):
    with pytest.raises(DataError, match="labels.png: mask has 3 classes"):
        read_mask(_save(tmp_path, "labels.png", np.array([[0, 1, 2]], np.uint8)))


def test_one_bit_mask(tmp_path):
    assert read_mask(_save(tmp_path, "m.png", np.array([[True, False]]))).mask.tolist() == [[1, 0]]


def test_black_and_white_rgb_mask(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = 255
    assert read_mask(_save(tmp_path, "m.png", rgb)).mask.tolist() == [[0, 1], [0, 0]]


def test_colour_mask_is_refused(tmp_path, rng):
    colours = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="paint.png: colour mask with"):
        read_mask(_save(tmp_path, "paint.png", colours))


def _jpeg_mask(tmp_path, quality):
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 10:40] = 255
    return _save(tmp_path, f"mask{quality}.jpg", mask, quality=quality), mask // 255


def test_jpeg_mask_noise_is_thresholded_not_counted(tmp_path):
    path, truth = _jpeg_mask(tmp_path, 30)
    grey = np.asarray(Image.open(path))
    assert ((grey != 0) & (grey != 255)).mean() > 0.02  # ringing: most edge pixels moved a little
    reading = read_mask(path, max_nonbinary_fraction=0.0)
    assert np.array_equal(reading.mask, truth) and reading.nonbinary == 0


def test_ambiguous_pixels_are_counted_and_too_many_refused(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 255
    mask[:, 28:36] = [20, 50, 80, 110, 140, 170, 200, 230]  # a soft edge: 4 of 8 columns in (25 %, 75 %)
    path = _save(tmp_path, "soft.png", mask)
    assert read_mask(path, max_nonbinary_fraction=0.1).nonbinary == 4 * 64
    with pytest.raises(DataError, match=r"soft.png: 6.2% of the mask's pixels are neither .*data.max_nonbinary_fraction"):
        read_mask(path, max_nonbinary_fraction=0.05)


DEFAULT_NONBINARY = 0.05  # params.yaml's data.max_nonbinary_fraction


def _as_jpeg_masks(tmp_path, masks, qualities=(30, 50, 75, 95)):
    """Real binary masks saved as greyscale JPEGs, compression noise and all."""
    for index, mask in enumerate(masks):
        for quality in qualities:
            yield _save(tmp_path, f"m{index}-q{quality}.jpg", (mask > 0).astype(np.uint8) * 255, quality=quality), mask > 0


def test_ordinary_jpeg_masks_pass_by_default(tmp_path, sample_dir):
    """The ringing at JPEG edges is not ambiguity: masks at qualities 30 to 95 pass the default limit."""
    masks = [np.asarray(Image.open(p).resize((288, 192), Image.NEAREST)) for p in sorted((sample_dir / "train_masks").iterdir())[:3]]
    for path, truth in _as_jpeg_masks(tmp_path, masks):
        reading = read_mask(path, max_nonbinary_fraction=DEFAULT_NONBINARY)
        assert (reading.mask == truth).mean() > 0.99, path.name


def test_isbi_membrane_masks_as_jpeg_pass_by_default(tmp_path):
    """Thin structures have edges everywhere: every exact-0/255 count refused these (about 23 % of pixels)."""
    root = shared_dataset("isbi2012-membranes")
    masks = [np.asarray(Image.open(p)) for p in sorted((root / "masks").iterdir())[:2]]
    for path, truth in _as_jpeg_masks(tmp_path, masks):
        reading = read_mask(path, max_nonbinary_fraction=DEFAULT_NONBINARY)
        assert (reading.mask == truth).mean() > 0.97, path.name


def test_grey_or_blurred_pictures_are_still_refused(tmp_path, sample_dir):
    from PIL import ImageFilter

    photo = Image.open(sorted((sample_dir / "train").iterdir())[0]).convert("L").resize((288, 192))
    mask = Image.open(sorted((sample_dir / "train_masks").iterdir())[0]).convert("L").resize((288, 192), Image.NEAREST)
    blurred = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(12))
    for name, picture in (("photo.jpg", photo), ("blurred.png", blurred)):
        with pytest.raises(DataError, match=f"{name}: .* neither background nor foreground"):
            read_mask(_save(tmp_path, name, picture), max_nonbinary_fraction=DEFAULT_NONBINARY)


def test_pillow_indices_equal_tf_decode_gif_frames(sample_dir):
    """The palette rule gives the mask the seed's tf.io.decode_gif path gives (RGB 0/255 frames)."""
    import tensorflow as tf

    paths = sorted((sample_dir / "train_masks").iterdir())[:4]
    try:
        paths += sorted((shared_dataset("carvana-sample") / "train_masks").iterdir())[:8]
    except pytest.skip.Exception:
        pass
    for path in paths:
        frames = tf.io.decode_gif(tf.io.read_file(str(path))).numpy()
        assert frames.shape[0] == 1 and set(np.unique(frames)) <= {0, 255}
        assert np.array_equal(read_mask(path).mask, (frames[0, ..., 0] > 127).astype(np.uint8)), path


# Resizing ------------------------------------------------------------------------------------


def test_resize_mask_stays_binary_and_keeps_a_majority_region(rng):
    mask = (rng.random((37, 53)) > 0.5).astype(np.uint8)
    small = resize_mask(mask, (16, 16))
    assert small.shape == (16, 16) and set(np.unique(small)) <= {0, 1}
    half = np.zeros((64, 64), np.uint8)
    half[:, :32] = 1
    small = resize_mask(half, (8, 8))
    assert small[:, :4].all() and not small[:, 4:].any()


def test_resize_image_and_probabilities_shapes(rng):
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert resize_image(image, (16, 8)).shape == (16, 8, 3)
    assert resize_image(image, (30, 40)) is image
    assert resize_probabilities(rng.random((16, 16)).astype(np.float32), (30, 40)).shape == (30, 40)


def test_reduced_jpeg_decode_keeps_full_size_and_orientation(tmp_path, rng):
    """A quarter-turned JPEG decoded at reduced scale: still turned, still reports its full size."""
    from conftest import tiny_params
    from unetseg.config.loading import params_from_dict
    from unetseg.core.application import RESIZE, Application
    from unetseg.data.masks import read_truth
    from unetseg.model.applying import model_input

    stored = np.zeros((256, 512, 3), np.uint8)
    stored[:, :64] = 255  # a white band on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path, "turned.jpg", stored, exif=exif, quality=95)
    image, info = read_image(path, with_info=True, reduce_to=(64, 32))
    assert info.size == (512, 256)  # displayed height, width
    assert image.shape[0] >= 64 and image.shape[1] >= 32 and image.shape[0] < 512
    assert image[: image.shape[0] // 8].mean() > 200  # the band is now at the top
    mask = _save(tmp_path, "turned_mask.png", np.zeros((512, 256), np.uint8))
    small, info = model_input(path, Application(RESIZE, (64, 32)))
    assert small.shape == (64, 32, 3) and info.size == (512, 256)
    assert read_truth(mask, info.size, params_from_dict(tiny_params()).data, path).mask.shape == (512, 256)
    # a mask drawn on the stored pixels is turned against the image as read: refused, even where masks
    # of another size are resized (the resize would stretch it across the image)
    stored_mask = _save(tmp_path, "stored_mask.png", np.zeros((256, 512), np.uint8))
    data = params_from_dict(tiny_params(data={"resize_masks": True})).data
    with pytest.raises(DataError, match=r"turned\.jpg is 256x512 but its mask .*stored_mask\.png is 512x256 .*EXIF"):
        read_truth(stored_mask, info.size, data, path)


@pytest.mark.parametrize("palette, bright", [([0, 0, 0, 255, 255, 255], False), ([255, 255, 255, 0, 0, 0], True),
                                             ([0, 0, 0, 128, 0, 0], False), ([250, 250, 250, 0, 0, 90], True)])
def test_a_palette_mask_whose_background_is_the_brighter_colour_is_flagged(tmp_path, palette, bright):
    mask = Image.frombytes("P", (2, 2), np.array([[0, 1], [1, 0]], np.uint8).tobytes())
    mask.putpalette(palette)
    reading = read_mask(_save(tmp_path, "m.png", mask))
    assert np.array_equal(reading.mask, [[0, 1], [1, 0]])  # still read by index: only flagged
    assert reading.bright_background is bright


def test_transparent_mask_pixels_are_background_whatever_colour_they_store(tmp_path):
    """Objects drawn on a transparent layer: the layer's stored colour (white here) is no object, and a
    mask drawn in alpha alone (one colour throughout) is its alpha; the plan reads them the same way."""
    from unetseg.plan.fingerprint import _raw_mask

    objects = np.zeros((8, 8), bool)
    objects[2:5, 3:7] = True
    layer = np.full((8, 8, 4), [255, 255, 255, 0], np.uint8)
    layer[objects] = [200, 30, 30, 255]  # red, opaque
    alpha_only = np.zeros((8, 8, 2), np.uint8)
    alpha_only[..., 1] = objects * 255
    black_on_white = np.full((8, 8, 4), [255, 255, 255, 0], np.uint8)
    black_on_white[objects] = [0, 0, 0, 255]  # black objects on a transparent white layer
    for name, array in (("layer.png", layer), ("alpha.png", alpha_only), ("black.png", black_on_white)):
        path = _save(tmp_path, name, Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "LA"))
        assert np.array_equal(read_mask(path).mask, objects.astype(np.uint8)), name
        values = _raw_mask(path, 10**8).values
        assert np.array_equal(values != 0, objects), name
