"""How a model meets an image: the seed's resize to one size, or the whole image at a working scale
covered by tiles.

One description that preprocess follows to shape the data, that the TFRecords' manifest
and the model file record, and that evaluate, predict and `unetseg predict` follow to
apply the model: so the model file alone says how to use it, and a model trained one
way is never applied the other way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from unetseg.core.errors import DataError

RESIZE, PATCHES = "resize", "patches"


@dataclass(frozen=True)
class Application:
    mode: str  # RESIZE | PATCHES
    size: tuple[int, int] | None  # RESIZE: every image's size; PATCHES: the patch and tile (None: data only)
    scale: float = 1.0  # PATCHES: the working scale
    overlap: float = 0.0  # PATCHES: of neighbouring tiles
    image_bits: int = 16  # the levels of 16-bit images (data.image_bits): how pixels become the model's

    @classmethod
    def from_params(cls, params, with_overlap: bool = True) -> Application:
        """From loaded params (unetseg.config.params.Params; read, not imported: config comes after core).
        Without `with_overlap` patches.overlap is not read (left 0): to check a model file, whose own counts."""
        bits = params.data.image_bits
        if params.patches.enabled:
            p = params.patches
            return cls(PATCHES, tuple(p.size), p.scale, p.overlap if with_overlap else 0.0, bits)
        return cls(RESIZE, tuple(params.preprocess.image_size), image_bits=bits)

    @classmethod
    def for_data(cls, params) -> Application:
        """What shapes the TFRecords alone: the size, or the working scale (the patch size is drawn
        at training time and may change without making the data again)."""
        bits = params.data.image_bits
        if params.patches.enabled:
            return cls(PATCHES, None, params.patches.scale, image_bits=bits)
        return cls(RESIZE, tuple(params.preprocess.image_size), image_bits=bits)

    @property
    def tiled(self) -> bool:
        return self.mode == PATCHES

    def working_size(self, original: tuple[int, int], path=None) -> tuple[int, int]:
        """The (height, width) at which the model sees an image of `original` size."""
        if not self.tiled:
            return self.size
        height, width = (round(n * self.scale) for n in original)
        if height < 1 or width < 1:
            raise DataError(
                f"{path or 'an image'}: {original[1]}x{original[0]} at patches.scale {self.scale} would be "
                f"{width}x{height} pixels: nothing left; raise patches.scale"
            )
        return height, width

    def as_record(self) -> dict:
        size = None if self.size is None else list(self.size)
        return {"mode": self.mode, "size": size, "scale": self.scale, "overlap": self.overlap,
                "image_bits": self.image_bits}

    @classmethod
    def from_record(cls, record: dict) -> Application:
        size = None if record["size"] is None else tuple(record["size"])
        bits = record.get("image_bits", 16)  # absent: written before the key
        if not isinstance(bits, int) or not 8 <= bits <= 16:
            raise TypeError(f"image_bits {bits!r} is no whole number of bits from 8 to 16")
        return cls(record["mode"], size, record["scale"], record["overlap"], bits)

    def describe(self) -> str:
        bits = "" if self.image_bits == 16 else f", 16-bit images read as {self.image_bits}-bit (data.image_bits)"
        if not self.tiled:
            height, width = self.size
            return f"images resized to {height}x{width} (patches.enabled false, preprocess.image_size){bits}"
        if self.size is None:
            return f"whole images at patches.scale {self.scale}{bits}"
        height, width = self.size
        return (f"whole images at patches.scale {self.scale} in tiles of {height}x{width} (patches.size) "
                f"overlapping by {self.overlap} (patches.overlap){bits}")


def _refuse(expected: Application, found: Application, expected_from: str, found_from: str) -> None:
    raise DataError(
        f"{expected_from} wants {expected.describe()}, but {found_from} was made with {found.describe()}; "
        "rerun the stages before this one (dvc repro)"
    )


def check_model_application(expected: Application, found: Application, expected_from: str, found_from: str) -> None:
    """Refuse a model trained one way and applied another (mode, size, scale), naming both settings.

    The overlap is an inference setting, not compared: the model file records the one it
    was trained with (and models/scored.keras the one evaluate scored with).
    """
    if replace(expected, overlap=found.overlap) != found:
        _refuse(expected, found, expected_from, found_from)


def check_data_application(expected: Application, found: Application, expected_from: str, found_from: str) -> None:
    """Refuse data shaped otherwise than the params say: the mode, the image bits, and the size (resize)
    or the scale (patches; the patch size is drawn at training time and may change)."""
    shape = (lambda a: (a.mode, a.scale, a.image_bits) if a.tiled else (a.mode, a.size, a.image_bits))  # noqa: E731
    if shape(expected) != shape(found):
        _refuse(expected, found, expected_from, found_from)
