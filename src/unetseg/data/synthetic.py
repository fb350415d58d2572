"""The embedded default dataset: a deterministic, Carvana-style sample made offline.

Each object (the "car") has a shape, colour and surface texture of its own and is
photographed in several views: rotated, scaled, moved, lit from another side and
set on a new textured, noisy background with distractor strokes, then saved as a
JPEG. Object and background brightness are drawn independently, so a brightness
threshold cannot find the object; its outline, shading and texture can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 4
MASK_PALETTE = [0, 0, 0, 255, 255, 255]


@dataclass(frozen=True)
class ObjectStyle:
    """What stays the same across the views of one object."""

    object_id: str
    harmonics: np.ndarray  # (k, amplitude, phase) rows of the radial outline
    elongation: float
    colour: np.ndarray  # RGB in [0, 1]
    stripe_frequency: float
    stripe_angle: float


def make_style(rng: np.random.Generator) -> ObjectStyle:
    k = np.arange(2, 7)
    amplitudes = rng.uniform(0.0, 0.22, size=k.size) / np.sqrt(k - 1)
    phases = rng.uniform(0, 2 * np.pi, size=k.size)
    return ObjectStyle(
        object_id=f"{int(rng.integers(16**12)):012x}",
        harmonics=np.stack([k, amplitudes, phases], axis=1),
        elongation=float(rng.uniform(1.0, 2.0)),
        colour=rng.uniform(0.05, 0.95, size=3),
        stripe_frequency=float(rng.uniform(0.15, 0.45)),
        stripe_angle=float(rng.uniform(0, np.pi)),
    )


def _outline(style: ObjectStyle, centre, radius: float, rotation: float, n: int = 256):
    """Polygon points of the object's star-shaped outline for one view."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k, amplitude, phase = style.harmonics.T
    r = radius * (1 + (amplitude[:, None] * np.cos(k[:, None] * theta + phase[:, None])).sum(0))
    x, y = r * np.cos(theta) * style.elongation, r * np.sin(theta)
    c, s = np.cos(rotation), np.sin(rotation)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a small random grid upscaled bicubically."""
    grid = rng.uniform(0, 255, size=(cells, max(2, cells * width // height))).astype(np.uint8)
    field = Image.fromarray(grid).resize((width, height), Image.BICUBIC)
    return np.asarray(field, dtype=np.float32) / 255.0


def _background(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    low, high = rng.uniform(0.0, 1.0, size=(2, 3))
    field = _smooth_field(rng, height, width, cells=int(rng.integers(3, 9)))[..., None]
    image = low + (high - low) * field
    image += rng.normal(0, rng.uniform(0.02, 0.08), size=image.shape)  # sensor grain
    canvas = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 10))):  # distractors: thin strokes and small rings
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x0, x1 = rng.uniform(0, width, size=2)
        y0, y1 = rng.uniform(0, height, size=2)
        if rng.random() < 0.6:
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 4)))
        else:
            r = 1 + rng.uniform(0.01, 0.06) * min(height, width)
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], outline=colour, width=2)
    return canvas


def render_view(style: ObjectStyle, rng: np.random.Generator, height: int, width: int):
    """One photograph of an object: (RGB uint8 image, {0,1} uint8 mask)."""
    radius = rng.uniform(0.16, 0.3) * min(height, width)
    centre = rng.uniform([0.25 * width, 0.3 * height], [0.75 * width, 0.7 * height])
    rotation = rng.uniform(0, 2 * np.pi)
    outline = _outline(style, centre, radius, rotation) * SUPERSAMPLE

    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).polygon([tuple(p) for p in outline], fill=255)
    alpha = np.asarray(big.resize((width, height), Image.BOX), dtype=np.float32) / 255.0
    mask = (alpha >= 0.5).astype(np.uint8)

    background = np.asarray(_background(rng, height, width), dtype=np.float32) / 255.0
    # A soft shadow offset from the object, as a car casts on the studio floor.
    shadow = Image.fromarray((alpha * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius * 0.15)
    )
    shift = rng.uniform(-0.1, 0.1, size=2) * radius
    shadow = np.roll(np.asarray(shadow, np.float32) / 255.0, (int(shift[1]), int(shift[0])), (0, 1))
    background *= 1 - 0.5 * shadow[..., None]

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = rng.uniform(0, 2 * np.pi)
    shading = ((xx - centre[0]) * np.cos(light) + (yy - centre[1]) * np.sin(light)) / radius
    stripes = np.sin(
        style.stripe_frequency
        * ((xx - centre[0]) * np.cos(style.stripe_angle + rotation)
           + (yy - centre[1]) * np.sin(style.stripe_angle + rotation))
    )
    surface = style.colour * (1 + 0.25 * shading[..., None]) + 0.06 * stripes[..., None]
    surface += rng.normal(0, 0.015, size=surface.shape)
    image = background * (1 - alpha[..., None]) + surface * alpha[..., None]
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def generate_sample(
    out_dir: Path,
    seed: int,
    num_objects: int,
    views_per_object: int,
    height: int,
    width: int,
    jpeg_quality: tuple[int, int],
) -> int:
    """Write `train/<object>_<view>.jpg` and `train_masks/<object>_<view>_mask.gif`.

    Every object draws from its own generator seeded by (seed, index), so a larger
    sample keeps the smaller one's objects. Returns the number of pairs written.
    """
    images_dir, masks_dir = out_dir / "train", out_dir / "train_masks"
    images_dir.mkdir(parents=True)
    masks_dir.mkdir(parents=True)
    for index in range(num_objects):
        rng = np.random.default_rng([seed, index])
        style = make_style(rng)
        for view in range(1, views_per_object + 1):
            image, mask = render_view(style, rng, height, width)
            stem = f"{style.object_id}_{view:02d}"
            quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
            Image.fromarray(image).save(images_dir / f"{stem}.jpg", quality=quality)
            gif = Image.frombytes("P", mask.shape[::-1], mask.tobytes())
            gif.putpalette(MASK_PALETTE)
            gif.save(masks_dir / f"{stem}_mask.gif")
    return num_objects * views_per_object
