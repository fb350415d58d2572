"""Decoding image files into arrays by stated rules: listing a folder, the pixel limit, the EXIF turn.

Every file is decoded by Pillow, fully, so a truncated or corrupt file is an error
that names it (never TensorFlow's lenient decoders). Before decoding, the size in
the file's header is checked against a pixel limit, so a small file that declares
a huge image (a decompression bomb) allocates nothing.

Images become RGB uint8: greyscale is repeated over three channels; palette, CMYK,
YCbCr and alpha images are converted by Pillow (alpha dropped); 16-bit images are
scaled to 8 bits from the levels that `data.image_bits` says their camera writes
(value * 255 / 4095 for 12 bits): a 12-bit micrograph in a 16-bit file read as 16-bit
would keep 17 grey levels. A level above them is an error, never clipped. The EXIF
orientation tag is applied to images and masks alike, so they turn together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from unetseg.core.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
DEFAULT_MAX_PIXELS = 100_000_000
EXIF_ORIENTATION = 0x0112

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def visible_files(folder: Path) -> list[Path]:
    """The files of a folder in name order, hidden ones (".DS_Store", "._x.jpg") left out."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder, by extension, in name order."""
    return [p for p in visible_files(folder) if p.suffix.lower() in IMAGE_SUFFIXES]


def nested_images(folder: Path) -> list[Path]:
    """The image files in a folder's subfolders (a folder per patient or sequence), in name order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and p.parent != folder and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def no_images_found(folder: Path, what: str) -> str:
    """The problem of a folder with no image files, saying where they are when its subfolders hold them
    (unetseg reads one folder)."""
    folder, nested = Path(folder), nested_images(folder)
    line = f"{folder}: no {what} found (extensions: {', '.join(sorted(IMAGE_SUFFIXES))})"
    if not nested:
        return line
    return (f"{line}, but its subfolders hold {len(nested)} (e.g. {nested[0]}): unetseg reads the files of one folder; "
            f"move them into {folder} with names made unique (e.g. {nested[0].parent.name}_{nested[0].name}), and "
            "split.group_pattern keeps each subfolder's files in one split")


@dataclass(frozen=True)
class Decoded:
    """What reading a file found, besides the array: for the data summary."""

    format: str
    mode: str
    size: tuple[int, int]  # height, width after the EXIF rotation
    top: int | None = None  # a 16-bit image's largest level (what `data.image_bits` must hold)


def open_checked(path: Path, what: str, max_pixels: int, reduce_to=None) -> tuple[Image.Image, Decoded]:
    """Open, check the declared size, decode fully, apply EXIF orientation.

    With `reduce_to` (height, width), a JPEG is decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) that still covers that size: libjpeg skips most of the work, and
    the result differs from a full decode resized to that size by well under one grey
    level on average. `Decoded.size` is the full size either way.
    """
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our own limit, below, names the file
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except _DECODE_ERRORS as error:
        raise DataError(f"{path}: cannot decode {what}: {error}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise DataError(
            f"{path}: {what} declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (data.max_pixels): not decoded"
        )
    try:
        with image:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            turned = orientation in (5, 6, 7, 8)  # a quarter turn
            info = Decoded(image.format or "unknown", image.mode, (width, height) if turned else (height, width))
            if reduce_to is not None and image.format == "JPEG":
                target = reduce_to if turned else reduce_to[::-1]  # draft takes the stored (width, height)
                image.draft(image.mode, target)
            image.load()
            oriented = ImageOps.exif_transpose(image) if orientation != 1 else image  # (it copies)
    except _DECODE_ERRORS as error:
        raise DataError(f"{path}: cannot decode {what}: {error}") from None
    return oriented, info


def image_bits_for(top: int) -> int:
    """The camera depth (8, 10, 12, 14 or 16 bits) that holds a 16-bit image level `top`."""
    return min(16, max(8, top.bit_length() + top.bit_length() % 2))


def sixteen_bit(image: Image.Image) -> bool:
    return image.mode.startswith("I;16") or image.mode == "I"


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, with_info: bool = False, reduce_to=None,
               bits: int = 16):
    """An image file as an RGB uint8 array (height, width, 3); with `with_info`, also what was read.

    `reduce_to` (height, width) allows a cheaper, smaller decode of at least that size (see `open_checked`);
    `bits`, the levels of a 16-bit image (`data.image_bits`).
    """
    path = Path(path)
    image, info = open_checked(path, "image", max_pixels, reduce_to)
    if sixteen_bit(image):
        levels = np.asarray(image, dtype=np.int64)
        top, full = int(levels.max(initial=0)), 2**bits - 1
        if top > 65535 or levels.min(initial=0) < 0:
            raise DataError(f"{path}: levels outside 0..65535 (signed or 32-bit): save as unsigned 8 or 16 bit")
        if top > full:  # never clipped: a model trained on dimmer images would see a saturated one
            raise DataError(f"{path}: a level of {top} in a 16-bit image, above {full}, the white of data.image_bits "
                            f"{bits}: images this bright need data.image_bits {image_bits_for(top)} (a model "
                            f"trained with {bits}, whose file records it, needs training again)")
        info = replace(info, top=top)
        grey = np.round(levels * (255.0 / full)).astype(np.uint8)
        array = np.repeat(grey[..., None], 3, axis=2)
    elif image.mode == "F":
        raise DataError(f"{path}: floating-point images are not supported; save as 8 or 16 bit")
    else:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return (array, info) if with_info else array
