import hashlib

import numpy as np
from PIL import Image

from unetseg.data.decoding import read_image
from unetseg.data.masks import read_mask
from unetseg.data.synthetic import generate_sample


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_carvana_layout_and_formats(sample_dir):
    images = sorted((sample_dir / "train").iterdir())
    masks = sorted((sample_dir / "train_masks").iterdir())
    assert len(images) == len(masks) == 12
    assert all(p.suffix == ".jpg" for p in images)
    assert [m.name for m in masks] == [f"{p.stem}_mask.gif" for p in images]
    objects = {p.stem.split("_")[0] for p in images}
    assert len(objects) == 4 and {p.stem.split("_")[1] for p in images} == {"01", "02", "03"}
    with Image.open(images[0]) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 48)
    with Image.open(masks[0]) as mask:
        assert mask.format == "GIF" and mask.mode == "P"
        assert set(np.unique(np.asarray(mask))) == {0, 1}
        assert mask.getpalette()[:6] == [0, 0, 0, 255, 255, 255]


def test_objects_are_visible_and_vary(sample_dir):
    fractions = [read_mask(p).mask.mean() for p in sorted((sample_dir / "train_masks").iterdir())]
    assert min(fractions) > 0.02 and max(fractions) < 0.9 and np.std(fractions) > 0.01
    first = sorted((sample_dir / "train").iterdir())[:2]
    assert not np.array_equal(read_image(first[0]), read_image(first[1]))  # views differ


def test_deterministic_and_stable_when_growing(tmp_path):
    a = generate_sample(tmp_path / "a", 7, 2, 2, 32, 48, (80, 90))
    generate_sample(tmp_path / "b", 7, 2, 2, 32, 48, (80, 90))
    generate_sample(tmp_path / "c", 7, 3, 2, 32, 48, (80, 90))
    assert a == 4 and _digest(tmp_path / "a") == _digest(tmp_path / "b")
    kept = {p.name for p in (tmp_path / "a" / "train").iterdir()}
    assert kept < {p.name for p in (tmp_path / "c" / "train").iterdir()}
    for name in kept:
        assert (tmp_path / "a" / "train" / name).read_bytes() == (tmp_path / "c" / "train" / name).read_bytes()
