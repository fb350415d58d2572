"""Pairing patterns and groups found from the names alone, and the hint check-data gives with them."""

import io
import os
import sys

import pytest

from unetseg.config.params import Data
from unetseg.core.errors import DataError
from unetseg.data.checking import check_data, map_in_workers
from unetseg.data.naming import Naming, find_group_pattern, find_naming, nearest_naming, second_masks
from unetseg.data.pairing import find_pairs
from unetseg.plan.planning import plan_pairing


def _folders(tmp_path, images, masks):
    for folder, names in (("images", images), ("masks", masks)):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")  # naming reads names only
    return tmp_path / "images", tmp_path / "masks"


CASES = [
    # (images, masks, expected naming): the layouts of the datasets users bring
    (["car1_01.jpg", "car1_02.jpg", "car2_01.jpg"], ["car1_01_mask.gif", "car1_02_mask.gif", "car2_01_mask.gif"],
     Naming("{stem}_mask.gif", "")),
    (["0.png", "1.png", "10.png"], ["0.png", "1.png", "10.png"], Naming("{stem}.png", "")),
    (["horse001.jpg", "horse002.jpg"], ["horse001.png", "horse002.png"], Naming("{stem}.png", "")),
    (["21_training.tif", "22_training.tif", "40_training.tif"], ["21_manual1.gif", "22_manual1.gif", "40_manual1.gif"],
     Naming("{id}_manual1.gif", "^(.+)_training$")),
    (["img_7.png", "img_12.png"], ["mask_7.png", "mask_12.png"], Naming("mask_{id}.png", "^img_(.+)$")),
    (["0001TP_006690.png", "0001TP_006720.png", "Seq05VD_f00000.png"],
     ["0001TP_006690_L.png", "0001TP_006720_L.png", "Seq05VD_f00000_L.png"], Naming("{stem}_L.png", "")),
    (["a1.jpg", "b2.jpg"], ["a1.png", "b2.tif"], Naming("{stem}.*", "")),  # mixed extensions: a wildcard
    # a prefix every name shares stays in the stem: ids are the image stems (as a split.groups CSV names them),
    # and images of another prefix pair too
    (["ISIC_0000000.jpg", "ISIC_0000001.jpg"], ["ISIC_0000000_segmentation.png", "ISIC_0000001_segmentation.png"],
     Naming("{stem}_segmentation.png", "")),
    (["0001TP_006690.png", "0001TP_006720.png"], ["0001TP_006690_L.png", "0001TP_006720_L.png"],
     Naming("{stem}_L.png", "")),
    (["only.jpg"], ["only_lesion.png"], Naming("{stem}_lesion.png", "")),
    (["img_0.png", "img_1.png"], ["lbl_0_{x}.png", "lbl_1_{x}.png"], Naming("lbl_{id}_{{x}}.png", "^img_(.+)$")),
    # brackets in the names are text, also under a wildcard pattern
    (["scan[1].jpg", "scan[2].jpg"], ["scan[1].png", "scan[2].tif"], Naming("{stem}.*", "")),
    (["scan[1].jpg", "scan[2].jpg"], ["scan[1]_mask.png", "scan[2]_mask.png"], Naming("{stem}_mask.png", "")),
    # files that are no images beside the masks (Windows' thumbnails, a README, a class table): no masks
    (["a.jpg", "b.jpg", "Thumbs.db"], ["a.png", "b.png", "Thumbs.db", "desktop.ini", "README.txt", "classes.csv"],
     Naming("{stem}.png", "")),
]


@pytest.mark.parametrize("images,masks,expected", CASES, ids=lambda c: c.mask_pattern if isinstance(c, Naming) else "")
def test_naming_found_pairs_every_file(tmp_path, images, masks, expected):
    images_dir, masks_dir = _folders(tmp_path, images, masks)
    naming = find_naming(images_dir, masks_dir)
    assert naming == expected
    pairs, problems = find_pairs(images_dir, masks_dir, naming.mask_pattern, naming.id_pattern)
    assert problems == [] and len(pairs) == len([name for name in images if name != "Thumbs.db"])


def test_masks_beside_their_images(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for name in ("1_1.tif", "1_1_mask.tif", "1_2.tif", "1_2_mask.tif", "2_1.tif", "2_1_mask.tif"):
        (folder / name).write_bytes(b"")
    naming = find_naming(folder, folder)
    assert naming == Naming("{stem}_mask.tif", "")
    pairs, problems = find_pairs(folder, folder, naming.mask_pattern)
    assert problems == [] and [p.id for p in pairs] == ["1_1", "1_2", "2_1"]


@pytest.mark.parametrize("images,masks", [
    (["a.png", "b.png"], ["x.png", "y.png"]),  # nothing in common
    (["a.png", "b.png", "c.png"], ["a.png", "b.png"]),  # an image without a mask
    (["a.jpg", "a.png"], ["a.png"]),  # two images with one stem
])
def test_no_naming_when_the_names_do_not_show_one(tmp_path, images, masks):
    assert find_naming(*_folders(tmp_path, images, masks)) is None


@pytest.mark.parametrize("images,masks,pattern,paired,unpaired", [
    ([f"{i:03d}.jpg" for i in range(10)], [f"{i:03d}.png" for i in range(8)], "{stem}.png", 8, "009.jpg"),
    ([f"{i:03d}.jpg" for i in range(10)], [f"{i:03d}_mask.png" for i in range(10)] + ["legend.png"],
     "{stem}_mask.png", 10, "legend.png"),
    ([f"{i:03d}.jpg" for i in range(10)], [f"{i:03d}.png" for i in range(5)] + [f"{i:03d}.tif" for i in range(5, 9)],
     "{stem}.*", 9, "009.jpg"),
], ids=["masks missing", "a stray file", "two extensions"])
def test_names_that_pair_but_for_a_few_files_are_named_with_those_files(tmp_path, images, masks, pattern, paired,
                                                                        unpaired):
    """A few files spoil the exact pairing: the pattern of the rest is named, and so are the few."""
    images_dir, masks_dir = _folders(tmp_path, images, masks)
    assert find_naming(images_dir, masks_dir) is None
    assert nearest_naming(images_dir, masks_dir) == Naming(pattern, "")
    with pytest.raises(DataError) as error:
        plan_pairing(images_dir, masks_dir, None)
    message = str(error.value)
    assert message.startswith(f"--mask-pattern '{pattern}' pairs {paired} of 10 images")
    assert unpaired in message
    hint = check_data(images_dir, masks_dir, Data(str(images_dir), str(masks_dir), "{stem}.gif")).problems[-1]
    assert hint.startswith("hint: images are named like 000.jpg") and f"--mask-pattern '{pattern}' pairs" in hint
    (tmp_path / "other").mkdir()
    assert nearest_naming(*_folders(tmp_path / "other", ["a.png", "b.png"], ["x.png", "y.png"])) is None
    # two masks an image, named two ways: neither is the pairing, and no file is blamed for it
    (tmp_path / "two").mkdir()
    both = _folders(tmp_path / "two", ["a.png", "b.png"], ["a_mask.png", "b_mask.png", "a_contour.png", "b_contour.png"])
    assert find_naming(*both) is None and nearest_naming(*both) is None


def test_groups_from_the_names():
    cars = [f"car{c}_{v:02d}" for c in range(8) for v in range(16)]
    assert find_group_pattern(cars) == ("^([^_]+)_", 8)
    # the coarsest grouping that is still a grouping: patients, not their studies
    slices = [f"p{p}_s{s}_{i}" for p in range(6) for s in range(3) for i in range(4)]
    assert find_group_pattern(slices) == ("^([^_]+)_", 6)
    # a prefix every id shares (ids are whole stems) is no group: the patients after it are
    prefixed = [f"IMG_{name}" for name in slices]
    assert find_group_pattern(prefixed) == ("^(IMG_[^_]+)_", 6)
    assert find_group_pattern([f"{i:04d}" for i in range(50)]) == ("", 50)  # no separator: by image
    few = [f"seq{s}_{i}" for s in range(3) for i in range(20)]  # 3 sequences: too few for a split by group
    assert find_group_pattern(few) == ("", 60)


def test_check_data_names_the_pattern_that_pairs(tmp_path):
    images_dir, masks_dir = _folders(tmp_path, ["21_training.tif", "22_training.tif"],
                                     ["21_manual1.gif", "22_manual1.gif"])
    check = check_data(images_dir, masks_dir, Data(str(images_dir), str(masks_dir), "{stem}.png"))
    hint = check.problems[-1]
    assert hint.startswith("hint: images are named like 21_training.tif; masks like 21_manual1.gif")
    assert "--mask-pattern '{id}_manual1.gif' --id-pattern '^(.+)_training$'" in hint


def test_masks_of_a_format_unetseg_cannot_read_are_named_so(tmp_path):
    images_dir, masks_dir = _folders(tmp_path, ["a.jpg", "b.jpg"], ["a.npy", "b.npy"])
    assert find_naming(images_dir, masks_dir) is None
    hint = check_data(images_dir, masks_dir, Data(str(images_dir), str(masks_dir), "{stem}.png")).problems[-1]
    assert ("masks like a.npy, b.npy (no image files among them: .bmp, .gif, .jpeg, .jpg, .pbm, .pgm, .png, "
            ".pnm, .ppm, .tif, .tiff, .webp)") in hint


def test_masks_in_subfolders_are_found_and_named(tmp_path):
    """A folder per patient: check-data says where the masks are and how to bring them up, for each folder."""
    images_dir, masks_dir = _folders(tmp_path, ["p1_a.png", "p2_a.png"], ["README.txt"])  # as Kaggle's LGG
    for patient in ("p1", "p2"):
        (masks_dir / patient).mkdir()
        (masks_dir / patient / "a.png").write_bytes(b"")
    problems = check_data(images_dir, masks_dir, Data(str(images_dir), str(masks_dir), "{stem}.png")).problems
    assert any("no masks found" in p and "its subfolders hold 2 (e.g." in p and "p1_a.png" in p for p in problems)


@pytest.mark.parametrize("beside", [True, False], ids=["one folder", "two folders"])
def test_second_masks_of_one_image_are_named_with_what_to_do(tmp_path, beside):
    """As BUSI saves them: `benign (3)_mask_1.png` beside `benign (3)_mask.png`, a second lesion of one image.
    Unpaired files otherwise, and no pattern: check-data and the plan say what those files are."""
    images = [f"benign ({i}).png" for i in range(1, 7)]
    masks = [f"benign ({i})_mask.png" for i in range(1, 7)] + ["benign (3)_mask_1.png", "benign (5)_mask_2.png"]
    if beside:
        images_dir = masks_dir = tmp_path / "benign"
        images_dir.mkdir()
        for name in images + masks:
            (images_dir / name).write_bytes(b"")
    else:
        images_dir, masks_dir = _folders(tmp_path, images, masks)
    assert find_naming(images_dir, masks_dir) is None
    said = ("2 file(s) in {} named as an image's second mask (benign (3)_mask_1.png beside benign (3)_mask.png): "
            "unetseg reads one mask an image (--mask-pattern '{{stem}}_mask.png' pairs the others): merge each into "
            "its first mask (their union) and delete it, or move it out of the folder; or, if it is a mask of its "
            "own, add its image").format(masks_dir)
    assert check_data(images_dir, masks_dir, Data(str(images_dir), str(masks_dir))).problems[-1] == f"hint: {said}"
    with pytest.raises(DataError) as error:
        plan_pairing(images_dir, masks_dir, None)
    assert str(error.value) == said
    with pytest.raises(DataError) as error:  # with the pattern given, the unpaired files, then what they are
        plan_pairing(images_dir, masks_dir, Naming("{stem}_mask.png", ""))
    assert str(error.value).endswith(f"hint: {said}")


def test_a_stray_image_beside_its_namesake_is_no_second_mask(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for name in ("a.png", "a_mask.png", "b.png", "b_mask.png", "c.png", "c_mask.png", "c_2.png"):
        (folder / name).write_bytes(b"")
    assert second_masks(folder, folder) is None  # c_2.png is an image without a mask, c.png no mask


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_reading_a_dataset_shows_its_progress_on_a_terminal_only(monkeypatch, terminal):
    """Reading thousands of pairs takes minutes: a bar on a terminal; nothing in a log or a test's capture."""
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert map_in_workers(abs, [-1, -2, -3], workers=1, desc="checking pairs") == [1, 2, 3]
    assert ("checking pairs: 100%" in err.getvalue() and "3/3" in err.getvalue()) == terminal
    assert (err.getvalue() == "") != terminal


def _killed(_job):
    os._exit(9)  # as the system's out-of-memory killer ends a process


def test_a_reading_process_that_dies_is_one_error_naming_the_key():
    with pytest.raises(DataError, match=r"a process of the 2 reading the data died .*base\.workers below 2"):
        map_in_workers(_killed, list(range(8)), workers=2)
