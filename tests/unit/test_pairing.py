import pytest
from PIL import Image

from unetseg.core.errors import DataError
from unetseg.data.pairing import pair_images_with_masks


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def test_carvana_pattern(tmp_path):
    for stem in ("car1_01", "car1_02"):
        _touch_image(tmp_path / "train" / f"{stem}.jpg")
        _touch_image(tmp_path / "masks" / f"{stem}_mask.gif")
    pairs = pair_images_with_masks(tmp_path / "train", tmp_path / "masks", "{stem}_mask.gif")
    assert [(p.id, p.mask.name) for p in pairs] == [("car1_01", "car1_01_mask.gif"), ("car1_02", "car1_02_mask.gif")]


def test_same_name_pattern_and_hidden_files_ignored(tmp_path):
    _touch_image(tmp_path / "images" / "0.png")
    _touch_image(tmp_path / "masks" / "0.png")
    (tmp_path / "images" / ".DS_Store").write_text("x")
    (tmp_path / "masks" / "._0.png").write_text("x")
    pairs = pair_images_with_masks(tmp_path / "images", tmp_path / "masks", "{stem}.png")
    assert len(pairs) == 1


def test_every_unpaired_file_in_one_error(tmp_path):
    _touch_image(tmp_path / "images" / "a.png")
    _touch_image(tmp_path / "images" / "b.png")
    _touch_image(tmp_path / "images" / "c.png")
    _touch_image(tmp_path / "masks" / "a.png")
    _touch_image(tmp_path / "masks" / "orphan.png")
    with pytest.raises(DataError) as info:
        pair_images_with_masks(tmp_path / "images", tmp_path / "masks", "{stem}.png")
    message = str(info.value)
    assert "2 image(s) without a mask" in message and "b.png" in message and "c.png" in message
    assert "1 mask(s) without an image" in message and "orphan.png" in message


def test_masks_beside_images(tmp_path):
    _touch_image(tmp_path / "all" / "x.png")
    _touch_image(tmp_path / "all" / "x_mask.png")
    pairs = pair_images_with_masks(tmp_path / "all", tmp_path / "all", "{stem}_mask.png")
    assert [(p.id, p.mask.name) for p in pairs] == [("x", "x_mask.png")]


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="nowhere: images folder not found"):
        pair_images_with_masks(tmp_path / "nowhere", tmp_path, "{stem}.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match="no images found"):
        pair_images_with_masks(tmp_path / "empty", tmp_path / "m", "{stem}.png")


def test_two_images_with_one_id(tmp_path):
    _touch_image(tmp_path / "images" / "a.png")
    _touch_image(tmp_path / "images" / "a.jpg")
    _touch_image(tmp_path / "masks" / "a_mask.gif")
    with pytest.raises(DataError, match="share the id 'a'"):
        pair_images_with_masks(tmp_path / "images", tmp_path / "masks", "{stem}_mask.gif")


def test_names_that_share_an_id(tmp_path):
    """DRIVE-style: 21_training.tif <-> 21_manual1.gif, through an id regex."""
    for n in (21, 22):
        _touch_image(tmp_path / "images" / f"{n}_training.tif")
        _touch_image(tmp_path / "masks" / f"{n}_manual1.gif")
    pairs = pair_images_with_masks(tmp_path / "images", tmp_path / "masks", "{id}_manual1.gif", r"^(\d+)_")
    assert [(p.id, p.image.name, p.mask.name) for p in pairs] == [
        ("21", "21_training.tif", "21_manual1.gif"), ("22", "22_training.tif", "22_manual1.gif")
    ]


def test_all_pairing_problems_in_one_error(tmp_path):
    for name in ("1_a.png", "2_a.png", "3_a.png", "x.png", "4_a.png", "4_b.png"):
        _touch_image(tmp_path / "images" / name)
    for name in ("1_m.png", "2_m1.png", "2_m2.png", "9_m.png"):
        _touch_image(tmp_path / "masks" / name)
    with pytest.raises(DataError) as info:
        pair_images_with_masks(tmp_path / "images", tmp_path / "masks", "{id}_m*.png", r"^(\d+)_")
    message = str(info.value)
    assert "image(s) without a mask" in message and "3_a.png" in message  # missing
    assert "mask(s) without an image" in message and "9_m.png" in message  # orphan
    assert "more than one candidate mask" in message and "2_m1.png, 2_m2.png" in message  # two candidates
    assert "share the id '4'" in message  # two images, one id
    assert "finds no id" in message and "x.png" in message
