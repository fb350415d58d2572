"""The planner's decisions from real files: what the masks are, resize or patches, encoder, mirroring."""

import numpy as np
import pytest
from PIL import Image

from unetseg.config.class_values import Classes
from unetseg.config.params import Data
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap
from unetseg.data.masks import load_pair, read_truth
from unetseg.data.pairing import find_pairs
from unetseg.plan import decisions, planning
from unetseg.plan.fingerprint import fingerprint
from unetseg.plan.task import plan_task


def _write(tmp_path, masks, images=None, suffix=".png", mode=None, quality=None, palettes=None):
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for index, mask in enumerate(masks):
        height, width = mask.shape[:2]
        image = images[index] if images is not None else rng.integers(0, 255, (height, width), np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"{index:03d}.png")
        picture = Image.fromarray(mask)
        if mode:
            picture = picture.convert(mode)
        if palettes:  # the mask holds indices into its own palette
            picture = picture.convert("P")
            picture.putpalette(palettes[index])
        picture.save(tmp_path / "masks" / f"{index:03d}{suffix}", **({"quality": quality} if quality else {}))
    pairs, problems = find_pairs(tmp_path / "images", tmp_path / "masks", "{stem}" + suffix)
    assert not problems
    return pairs


def plan(tmp_path, masks, ignore=(), **kwargs) -> dict:
    """Every data decision for these masks, as {key: value}, after checking that the pipeline reads
    every mask by the planned rules (the split stage's check)."""
    return plan_and_read(tmp_path, masks, ignore, **kwargs)[0]


def plan_and_read(tmp_path, masks, ignore=(), **kwargs) -> tuple[dict, list[np.ndarray]]:
    """The decisions, and every mask as the pipeline reads it by them."""
    pairs = _write(tmp_path, masks, **kwargs)
    fp = fingerprint(pairs, 10**8, ignore, workers=1)
    task, found = plan_task(fp, ignore)
    _, mode = decisions.plan_mode(fp, task)
    chosen = {d.key: d.value for d in found + mode + decisions.plan_encoder(fp) + decisions.plan_mirroring(fp, task)}
    classes = {key.partition(".")[2]: value for key, value in chosen.items() if key.startswith("classes.")}
    class_map = ClassMap.from_params(Classes(**{k: _tupled(v) for k, v in classes.items()}))
    data = Data(str(tmp_path), str(tmp_path), max_nonbinary_fraction=chosen.get("data.max_nonbinary_fraction", 0.05),
                instance_masks=chosen.get("data.instance_masks", False))
    truths = [read_truth(pair.mask, masks[0].shape[:2], data, pair.image, class_map).mask for pair in pairs]
    return chosen, truths


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def blobs(count=8, size=(256, 256), radius=60, value=255, seed=0):
    """Large discs placed at random: objects that a small resize keeps."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows, columns = np.mgrid[:height, :width]
    masks = []
    for _ in range(count):
        cy, cx = rng.integers(radius, height - radius), rng.integers(radius, width - radius)
        masks.append((((rows - cy) ** 2 + (columns - cx) ** 2 < radius**2) * value).astype(np.uint8))
    return masks


def test_large_objects_resize_small_and_binary(tmp_path):
    chosen = plan(tmp_path, blobs())
    assert chosen["classes.names"] == []
    assert chosen["patches.enabled"] is False
    assert max(chosen["preprocess.image_size"]) <= 128
    assert chosen["model.encoder"] == "none"  # grey images
    assert chosen["augment.flip_horizontal"] is True


def test_thin_structures_get_patches_at_full_scale(tmp_path):
    masks = []
    for shift in range(6):
        mask = np.zeros((384, 384), np.uint8)
        mask[:, shift + 10::24] = 255  # lines 1 px wide: no resize keeps them
        mask[shift + 5::24, :] = 255
        masks.append(mask)
    chosen = plan(tmp_path, masks)
    assert chosen["patches.enabled"] is True
    assert chosen["patches.scale"] == 1.0
    assert chosen["patches.size"] == [128, 128]


@pytest.mark.parametrize("classes", [1, 2], ids=["dark spots on white", "two classes of specks"])
def test_small_classes_under_a_large_background_decide_the_size(tmp_path, classes):
    """Classes of specks on under 1 % of the pixels each, where only the background has more: the resize
    must keep them (the background alone keeps IoU 0.999 at any size, and once chose 64 px)."""
    masks = []
    for index in range(6):
        rng = np.random.default_rng(index)
        mask = np.zeros((384, 384), np.uint8)
        for number in range(40):
            row, column = rng.integers(4, 380, 2)
            mask[row - 2: row + 2, column - 2: column + 2] = 1 + number % classes
        masks.append(255 - 255 * mask if classes == 1 else mask)
    chosen = plan(tmp_path, masks)
    assert len(chosen["classes.values"]) == classes + 1
    assert chosen["patches.enabled"] is True or min(chosen["preprocess.image_size"]) >= 256


def test_jpeg_masks_are_binary_with_a_measured_noise_limit(tmp_path):
    chosen = plan(tmp_path, blobs(count=6), suffix=".jpg", mode="RGB", quality=75)
    assert chosen["classes.names"] == []
    assert 0.01 <= chosen["data.max_nonbinary_fraction"] <= 0.05


def test_bright_majority_is_two_classes_with_the_dark_structure_second(tmp_path):
    masks = [255 - mask for mask in blobs(count=6, radius=40)]  # dark discs on a bright field (membranes' way)
    chosen = plan(tmp_path, masks)
    assert chosen["classes.values"] == [255, 0]
    assert chosen["classes.masks"] == "labels"


def test_label_maps_with_a_void_value(tmp_path):
    masks = []
    for index, blob in enumerate(blobs(count=6)):
        labels = np.where(blob > 0, 1 + index % 2, 0).astype(np.uint8)
        labels[:2] = 15  # an unlabelled strip
        masks.append(labels)
    chosen = plan(tmp_path, masks, ignore=(15,))
    assert chosen["classes.names"] == ["value_0", "value_1", "value_2"]
    assert chosen["classes.values"] == [0, 1, 2] and chosen["classes.ignore"] == [15]


def test_colour_masks_are_classes_by_colour(tmp_path):
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 30, 200]], np.uint8)
    masks = [palette[np.where(blob > 0, 1 + i % 2, 0)] for i, blob in enumerate(blobs(count=6))]
    chosen = plan(tmp_path, masks)
    assert chosen["classes.masks"] == "colours"
    assert chosen["classes.values"] == [[0, 0, 0], [30, 30, 200], [200, 30, 30]]


def test_colour_masks_with_blended_edges_are_refused_naming_a_mask(tmp_path):
    """Colour masks resized bilinearly: hundreds of in-between colours, once planned as a class each."""
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 30, 200]], np.uint8)
    masks = [np.asarray(Image.fromarray(palette[np.where(blob > 0, 1 + i % 2, 0)]).resize((128, 128)))
             for i, blob in enumerate(blobs(count=6))]
    with pytest.raises(DataError, match=r"masks/00\d\.png: \d+ colours in one mask .*no antialiasing"):
        plan(tmp_path, masks)


def test_palette_masks_whose_palettes_differ_are_read_by_colour(tmp_path):
    """A palette saved per file (ordered by use, say) gives one index another colour in each mask:
    read by index, red objects would be one class in some files and another in the rest."""
    red, blue = [200, 30, 30], [30, 30, 200]
    masks, palettes = [], []
    for index, blob in enumerate(blobs(count=6)):
        labels = np.where(blob > 0, 1, 0).astype(np.uint8)
        labels[:16, :16] = 2  # a corner of the other class
        swapped = index % 2  # in these files index 1 is blue and index 2 red
        masks.append(np.where(labels == 0, 0, labels ^ 3 if swapped else labels).astype(np.uint8))
        palettes.append([0, 0, 0] + (blue + red if swapped else red + blue))
    chosen, truths = plan_and_read(tmp_path, masks, palettes=palettes)
    assert chosen["classes.masks"] == "colours"
    assert chosen["classes.values"] == [[0, 0, 0], blue, red]
    for blob, truth in zip(blobs(count=6), truths):
        assert (truth[16:][blob[16:] > 0] == 2).all() and (truth[:16, :16] == 1).all()


def test_a_void_index_is_ignored_as_its_colour_when_palettes_differ(tmp_path):
    """VOC-style void at index 255, one colour in every file, given by its index as a user knows it."""
    red, green, void = [200, 30, 30], [30, 200, 30], [224, 224, 192]
    masks, palettes = [], []
    for index, blob in enumerate(blobs(count=6)):
        labels = np.where(blob > 0, 1, 0).astype(np.uint8)
        labels[:2] = 255  # a void border
        masks.append(labels)
        palettes.append([0, 0, 0] + (green if index % 2 else red) + [0, 0, 0] * 253 + void)
    chosen = plan(tmp_path / "voc", masks, ignore=(255,), palettes=palettes)
    assert chosen["classes.values"] == [[0, 0, 0], green, red] and chosen["classes.ignore"] == [void]
    palettes[0] = palettes[0][:-3] + [255, 255, 255]  # void drawn another colour in one file: which is meant?
    with pytest.raises(DataError, match=r"--ignore 255: .* index 255 is colour \[255, 255, 255\] in .*000.png but "
                                        r"\[224, 224, 192\] in .*001.png: give the void colour instead"):
        plan(tmp_path / "differs", masks, ignore=(255,), palettes=palettes)


def test_binary_palette_masks_with_swapped_palettes_are_two_classes_by_colour(tmp_path):
    """The binary reader takes palette index 0 as background: where some files draw index 0 bright,
    the objects are read by colour instead, as two classes, the colour of most pixels (the background) first."""
    masks, palettes = [], []
    for index, blob in enumerate(blobs(count=6)):
        inverted = index % 2
        masks.append(((blob == 0) if inverted else (blob > 0)).astype(np.uint8))
        palettes.append([0, 230, 230, 120, 0, 0] if inverted else [120, 0, 0, 0, 230, 230])
    chosen, truths = plan_and_read(tmp_path, masks, palettes=palettes)
    assert chosen["classes.masks"] == "colours"
    assert chosen["classes.values"] == [[120, 0, 0], [0, 230, 230]]  # the background first, though packed larger
    for blob, truth in zip(blobs(count=6), truths):
        assert np.array_equal(truth, (blob > 0).astype(np.uint8))


def test_palette_masks_of_object_ids_stay_objects_whatever_their_palettes(tmp_path):
    rng = np.random.default_rng(3)
    palettes = [rng.integers(0, 256, 768).tolist() for _ in range(6)]  # a random palette per file
    chosen = plan(tmp_path, nuclei(), palettes=palettes)
    assert chosen["data.instance_masks"] is True and chosen["classes.names"] == []


def test_masks_saved_two_ways_are_refused_naming_one_of_each(tmp_path):
    """Colour masks and one grey (L) file: the colour reader refuses the grey file, so the plan must too."""
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 30, 200]], np.uint8)
    masks = [palette[np.where(blob > 0, 1 + i % 2, 0)] for i, blob in enumerate(blobs(count=5))]
    _write(tmp_path, masks)
    Image.new("L", (256, 256)).save(tmp_path / "masks" / "005.png")  # an empty mask, saved grey
    Image.new("RGB", (256, 256)).save(tmp_path / "images" / "005.png")
    pairs, _ = find_pairs(tmp_path / "images", tmp_path / "masks", "{stem}.png")
    with pytest.raises(DataError, match=r"mix encodings \(colour: \S+000.png, grey: \S+005.png\): save them all one way"):
        plan_task(fingerprint(pairs, 10**8, workers=1), ())


def test_objects_always_on_one_side_turn_mirroring_off(tmp_path):
    masks = []
    for mask in blobs(count=6, radius=30):
        mask[:, 128:] = 0  # every object in the left half
        masks.append(mask)
    chosen = plan(tmp_path, masks)
    assert chosen["augment.flip_horizontal"] is False and chosen["inference.tta_flip"] is False


def test_colour_photographs_get_the_encoder_when_installed(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (256, 256, 3), np.uint8) for _ in range(6)]
    chosen = plan(tmp_path, blobs(count=6), images=images)
    expected = "efficientnet_lite0" if decisions.encoder_installed() else "none"
    assert chosen["model.encoder"] == expected


def test_unusable_masks_are_refused(tmp_path):
    with pytest.raises(DataError, match="nothing to learn"):
        plan(tmp_path / "a", [np.zeros((64, 64), np.uint8)] * 4)
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="neither binary masks nor a label map"):  # photographs in the masks folder
        plan(tmp_path / "b", [rng.integers(0, 255, (64, 64), np.uint8) for _ in range(4)])
    # dark discs on white saved as JPEG: the label reader cannot name the dark class among the noise levels
    with pytest.raises(DataError, match="covers 9.% of the pixels: .* save the masks as PNG"):
        plan(tmp_path / "c", [255 - mask for mask in blobs(count=6, radius=40)], suffix=".jpg", mode="RGB", quality=75)


def test_colour_masks_with_an_empty_one_and_near_grey_colours(tmp_path):
    palette = np.array([[0, 0, 0], [255, 255, 255], [200, 20, 20]], np.uint8)
    masks = []
    for index, blob in enumerate(blobs(count=6)):
        labels = np.where(blob > 0, 1, 0)
        labels[:3, :3] = 2  # a small red mark: under 1 % of the pixels
        masks.append(palette[labels])
    masks.append(np.zeros_like(masks[0]))  # one mask with nothing in it: black, which is also grey
    chosen = plan(tmp_path, masks)
    assert chosen["classes.masks"] == "colours"
    assert chosen["classes.values"] == [[0, 0, 0], [200, 20, 20], [255, 255, 255]]


def test_one_bit_masks_with_a_bright_majority(tmp_path):
    chosen = plan(tmp_path, [255 - mask for mask in blobs(count=6, radius=40)], mode="1")
    assert chosen["classes.values"] == [255, 0]  # as the label reader sees a 1-bit mask


def test_binary_levels_above_zero_with_an_empty_mask_are_two_classes(tmp_path):
    masks = [np.where(mask > 0, 2, 1).astype(np.uint8) for mask in blobs(count=5)]
    masks.append(np.ones_like(masks[0]))  # background only: the binary reader would call it all object
    chosen = plan(tmp_path, masks)
    assert chosen["classes.values"] == [1, 2]


def test_a_label_map_drawn_in_grey_levels_is_not_a_noisy_binary_mask(tmp_path):
    masks = []
    for index, blob in enumerate(blobs(count=8, radius=40)):
        labels = np.where(blob > 0, 50 * (1 + index % 4), 0).astype(np.uint8)
        masks.append(labels)
    chosen = plan(tmp_path, masks)
    assert chosen["classes.values"] == [0, 50, 100, 150, 200]


def test_binary_masks_drawn_1_in_some_files_and_255_in_others_are_binary(tmp_path):
    masks = blobs(4) + blobs(4, value=1, seed=1)
    assert plan(tmp_path / "mixed", masks)["classes.names"] == []  # and the split stage reads every mask so
    task, found = plan_task(fingerprint(find_pairs(tmp_path / "mixed/images", tmp_path / "mixed/masks", "{stem}.png")[0],
                                        10**8, workers=1), ())
    assert task.binary and "1 in some masks and 255 in others" in {d.key: d for d in found}["classes.names"].because
    # with 255 beside 1 in a mask, 255 is void around the objects (as in PASCAL VOC): not binary
    border = [np.where(m > 0, 1, 0).astype(np.uint8) for m in blobs(4)]
    border[0][:4] = 255
    assert plan(tmp_path / "void", border + blobs(4))["classes.names"] == ["value_0", "value_1", "value_255"]


def nuclei(count=6, size=(96, 128), objects=(20, 40), dtype=np.uint8, seed=0):
    """Instance label maps: discs numbered 1, 2, ... as cell tools save them, a different number in each."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size[0], :size[1]]
    masks = []
    for _ in range(count):
        ids = np.zeros(size, dtype)
        for index in range(1, int(rng.integers(*objects)) + 1):
            cy, cx = rng.integers(0, size[0]), rng.integers(0, size[1])
            ids[(rows - cy) ** 2 + (columns - cx) ** 2 < 16] = index
        masks.append(ids)
    return masks


@pytest.mark.parametrize("objects, dtype", [((20, 40), np.uint8), ((300, 400), np.uint16)], ids=["8-bit", "16-bit"])
def test_instance_label_maps_are_objects_against_background(tmp_path, objects, dtype):
    """Object ids, up to hundreds in a 16-bit mask: every nonzero pixel an object, as the reader then reads them
    (the 16-bit maps were once thresholded at half their scale: empty masks, planned as binary)."""
    masks = nuclei(objects=objects, dtype=dtype, size=(192, 256) if dtype == np.uint16 else (96, 128))
    pairs = _write(tmp_path, masks)
    task, found = plan_task(fingerprint(pairs, 10**8, (), workers=1), ())
    chosen = {d.key: d for d in found}
    assert task.binary and chosen["data.instance_masks"].value is True and chosen["classes.names"].value == []
    share = np.mean([np.count_nonzero(m) / m.size for m in masks])
    assert f"objects {share:.1%} of the pixels" in chosen["classes.names"].because
    data = Data(str(tmp_path), str(tmp_path), instance_masks=True)
    for pair, mask in zip(pairs, masks):
        assert np.array_equal(read_truth(pair.mask, mask.shape, data).mask, (mask > 0).astype(np.uint8))
    # read as binary masks without the key, they stop with a line that names it (they once read as empty)
    with pytest.raises(DataError, match=r"000\.png: mask has \d+ .*data\.instance_masks true"):
        read_truth(pairs[0].mask, masks[0].shape, Data(str(tmp_path), str(tmp_path)))


def people(count=12, size=(96, 128), seed=0, most=6, every=None, split=False, empty=0):
    """A few objects numbered 1 to k in each mask (pedestrians, as Penn-Fudan saves them), k from 1 to `most`.
    Label maps that share some of that: `every`, k is that in all masks but a few (organs, one region each);
    `split`, each value in two regions (a class across a scene); `empty`, that many masks hold nothing."""
    rng = np.random.default_rng(seed)
    masks = []
    for index in range(count):
        k = every - (index % 5 == 0) if every else int(rng.integers(1, most + 1))
        mask = np.zeros(size, np.uint8)
        for number in range(1, k + 1) if index >= empty else ():
            left = 4 + (number - 1) * (size[1] - 8) // most
            mask[10 + number: size[0] - 10, left: left + (size[1] - 8) // most - 4] = number
            if split:
                mask[size[0] // 2, left: left + (size[1] - 8) // most - 4] = 0
        masks.append(mask)
    return masks


def test_a_few_numbered_objects_in_each_mask_are_objects_against_background(tmp_path):
    """Ids 1 to k, k from mask to mask, each a region of its own: objects, not k classes ('person 3')."""
    chosen, truths = plan_and_read(tmp_path, people())
    assert chosen["data.instance_masks"] is True and chosen["classes.names"] == []
    assert all(set(np.unique(truth)) <= {0, 1} for truth in truths)


def _slices(count=12):
    """An organ (1) holding its tumour (2), in slices: empty, organ alone, organ and tumour."""
    masks = []
    for index in range(count):
        mask = np.zeros((96, 128), np.uint8)
        if index % 3:
            mask[20:80, 20:100] = 1
        if index % 3 == 2:
            mask[40:60, 40:70] = 2
        masks.append(mask)
    return masks


@pytest.mark.parametrize("masks", [
    people(every=3, most=3),  # organs 1 to 3, all three in most masks: the top class recurs
    people(split=True),  # numbers vary, but each is two regions: classes across the images
    [np.where(m > 0, m + (m > 1), 0).astype(np.uint8) for m in people()],  # 1, 3, 4, ...: not every number held
    _slices(),  # empty slices, the organ, the organ and its tumour: maxima 0, 1 and 2 are no numbering
], ids=["top class recurs", "two regions a value", "numbers skipped", "nested classes and empty slices"])
def test_label_maps_with_some_signs_of_numbered_objects_stay_classes(tmp_path, masks):
    chosen = plan(tmp_path, masks)
    assert chosen["data.instance_masks"] is False and len(chosen["classes.values"]) >= 3


@pytest.mark.parametrize("top", [3, 18], ids=["3-classes", "19-face-parts"])
def test_label_maps_are_classes_not_object_ids(tmp_path, top):
    """Classes 1 to `top` on 0 in every mask (19 face parts pass every test of one mask's values): the top class
    recurs from mask to mask where object ids end at a different number in each."""
    masks = [np.where(m > 0, (m % top) + 1, 0).astype(np.uint8) for m in nuclei(objects=(40, 60))]
    task, found = plan_task(fingerprint(_write(tmp_path, masks), 10**8, (), workers=1), ())
    assert not task.binary and {d.key: d.value for d in found}["data.instance_masks"] is False


@pytest.mark.parametrize("top, bits", [(4095, 12), (1500, 12), (60000, 16), (None, 16)],
                         ids=["12-bit", "dim-16-bit", "16-bit", "8-bit"])
def test_the_image_bits_are_the_camera_depth_that_holds_every_level(tmp_path, top, bits):
    """data.image_bits from the brightest 16-bit image, at an even camera depth (headroom for new images)."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255 if top is None else top, (32, 32), endpoint=True,
                           dtype=np.uint8 if top is None else np.uint16) for _ in range(3)]
    if top is not None:
        images[1][0, 0] = top
    pairs = _write(tmp_path, blobs(count=3, size=(32, 32), radius=8), images=images)
    decision = planning._image_bits(fingerprint(pairs, 10**8, (), workers=1))
    assert decision.key == "data.image_bits" and decision.value == bits
    assert (f"levels up to {top}" if top is not None else "no 16-bit images") in decision.because
    data = Data(str(tmp_path), str(tmp_path), image_bits=bits)
    for pair, image in zip(pairs, images):  # the split's check reads every image by the planned bits
        expected = image if top is None else np.round(image * (255 / (2**bits - 1))).astype(np.uint8)
        assert np.array_equal(load_pair(pair.image, pair.mask, data).image[..., 0], expected)
