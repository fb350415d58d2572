"""The class map: params rules, mask values to class indices, class tables, label maps on real masks."""

import numpy as np
import pytest
from PIL import Image

from conftest import CLASSES, merge, shared_dataset, tiny_params
from unetseg.config.checks import ParamsError
from unetseg.config.class_values import Classes
from unetseg.config.loading import params_from_dict
from unetseg.core.constants import IGNORE
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap, classes_from_table, loss_weights, pixel_counts, read_class_csv
from unetseg.data.masks import read_labels
from unetseg.data.resize import resize_truth


def _classes(**changes) -> Classes:
    return Classes(**{**CLASSES, **changes})


@pytest.mark.parametrize("changes, message", [
    ({"names": ["a", "b", "a"]}, "classes.names: repeated name(s) a"),
    ({"names": ["a"], "values": [0]}, "classes.names: name 2 to 255 classes, got 1"),
    ({"values": [0, 1]}, "classes.values: one value (or list of merged values) per class in classes.names (3)"),
    ({"values": [0, 1, 1]}, "classes.values: mask value 1 is given to both 'box' and 'disc'"),
    ({"values": [0, 1, [2, 0]]}, "classes.values: mask value 0 is given to both 'background' and 'disc'"),
    ({"ignore": [255, 2]}, "classes.ignore: mask value 2 is both ignored and the class 'disc'"),
    ({"ignore": [255, 255]}, "classes.ignore: repeated value(s) 255"),
    ({"values": [0, 1, [9, 9, 9]], "ignore": []}, "classes.values: mask value 9 is given to both"),
    ({"values": [0, 1, 70000]}, "classes.values[2] (disc): a label map value is an integer 0..65535, got int 70000"),
    ({"masks": "colours", "ignore": []},
     "classes.values[0] (background): a colour is [r, g, b] with integers 0..255, got int 0 (a label index: set classes.masks: labels)"),
    ({"values": [[0, 0, 0], [255, 0, 0], [0, 0, 255]], "ignore": [[1, 2, 3]]},
     "classes.ignore[0]: a label map value is an integer 0..65535, got tuple (1, 2, 3) (a colour: set classes.masks: colours)"),
    ({"weights": [1, 2]}, "classes.weights: none, balanced, or one positive number per class (3)"),
    ({"weights": [1, 0, 2]}, "classes.weights: none, balanced, or one positive number per class (3)"),
    ({"weights": "equal"}, "classes.weights: none, balanced, or one positive number per class"),
    ({"names": [], "values": [], "ignore": [255]}, "classes.ignore: needs classes.names"),
])
def test_bad_class_maps_name_the_key(changes, message):
    with pytest.raises(ParamsError) as error:
        _classes(**changes)
    assert message in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    ({"train": {"loss": "bce_dice"}}, "train.loss 'bce_dice' does not apply with classes.names set"),
    ({"inference": {"largest_component": True}}, "inference.largest_component True does not apply with classes"),
    ({"inference": {"threshold": 0.3}}, "inference.threshold 0.3 does not apply with classes.names set .*: each "
                                        "pixel takes its most probable class; leave it at 0.5"),
])
def test_binary_only_options_are_refused_with_classes(overrides, message):
    raw = merge(tiny_params(classes=CLASSES, train={"loss": "crossentropy", "monitor": "val_mean_iou"}), overrides)
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        params_from_dict(raw)


def test_mean_iou_monitor_needs_classes():
    with pytest.raises(ParamsError, match="train.monitor 'val_mean_iou' does not apply with binary masks"):
        params_from_dict(tiny_params(train={"monitor": "val_mean_iou"}))


def test_merged_values_and_ignored_values_become_indices():
    classes = ClassMap.from_params(_classes(values=[[0, 3], 1, [2, 4]], ignore=[255, 9]))
    values = np.array([[0, 1, 2, 3], [4, 255, 9, 1]], np.uint8)
    assert classes.encode(values, "m.png").tolist() == [[0, 1, 2, 0], [2, IGNORE, IGNORE, 1]]


def test_unknown_values_are_named_with_their_pixel_counts():
    classes = ClassMap.from_params(_classes())
    values = np.array([[0, 7, 7, 7], [9, 1, 2, 255]], np.uint16)
    with pytest.raises(DataError) as error:
        classes.encode(values, "scene.png")
    assert str(error.value).startswith("scene.png: mask value(s) 7 (3 pixels), 9 (1 pixels) are neither a class nor ignored")


def test_colour_masks_by_their_colours():
    classes = ClassMap.from_params(_classes(masks="colours", values=[[0, 0, 0], [128, 64, 128], [[70, 70, 70], [80, 80, 80]]],
                                            ignore=[[255, 255, 255]]))
    rgb = np.array([[[0, 0, 0], [128, 64, 128], [80, 80, 80], [255, 255, 255]]], np.uint8)
    assert classes.encode(rgb, "m.png").tolist() == [[0, 1, 2, IGNORE]]
    assert classes.colours == [(0, 0, 0), (128, 64, 128), (70, 70, 70)]
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(DataError, match=r"m.png: mask value\(s\) \[1, 2, 3\] \(1 pixels\)"):
        classes.encode(rgb, "m.png")


def test_a_colour_mask_read_as_labels_and_a_grey_one_read_as_colours_are_refused(tmp_path):
    colour = tmp_path / "colour.png"
    Image.fromarray(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)).save(colour)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.array([[0, 1]], np.uint8)).save(grey)
    with pytest.raises(DataError, match="colour.png: a colour .RGB. mask, but classes.masks is labels"):
        read_labels(colour, ClassMap.from_params(_classes()))
    with pytest.raises(DataError, match="grey.png: a greyscale .L. mask, but classes.masks is colours"):
        read_labels(grey, ClassMap.from_params(_classes(masks="colours", values=[[0, 0, 0], [255, 0, 0], [0, 0, 255]],
                                                        ignore=[])))


def test_the_record_carried_by_data_and_models_gives_the_same_map():
    for classes in (_classes(values=[[0, 3], 1, 2]),
                    _classes(masks="colours", values=[[0, 0, 0], [[1, 1, 1], [2, 2, 2]], [3, 3, 3]], ignore=[[9, 9, 9]])):
        class_map = ClassMap.from_params(classes)
        assert ClassMap.from_record(class_map.as_record()) == class_map


def test_balanced_weights_follow_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    weights = loss_weights(_classes(weights="balanced"), np.bincount(labels))
    assert weights == pytest.approx(expected)
    assert loss_weights(_classes(weights="balanced"), np.array([70, 30, 0]))[2] == 0  # absent: no weight
    assert loss_weights(_classes(weights=[1, 2, 3.5]), None).tolist() == [1, 2, 3.5]
    assert loss_weights(_classes(), None) is None


def test_stanford_background_class_table_with_its_unknown_ignored():
    root = shared_dataset("stanford-background")
    found = classes_from_table(root / "classes.csv", [15])
    assert found["names"][:3] == ["sky", "tree", "road"] and len(found["names"]) == 8
    assert found["values"] == list(range(8)) and found["ignore"] == [15] and found["masks"] == "labels"
    Classes(**found, weights="none")  # a valid params section


def test_colour_class_tables(tmp_path):
    table = tmp_path / "class_dict.csv"
    table.write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nVoid,0,0,0\n")
    found = classes_from_table(table, [[0, 0, 0]])
    assert found == {"names": ["Sky", "Road"], "values": [[128, 128, 128], [128, 64, 128]], "ignore": [[0, 0, 0]],
                     "masks": "colours"}
    (tmp_path / "bad.csv").write_text("label,colour\nsky,blue\n")
    with pytest.raises(ParamsError, match="bad.csv: a class table has the columns value,name or name,r,g,b"):
        read_class_csv(tmp_path / "bad.csv")


def test_unetseg_classes_writes_the_table_into_params(tmp_path, capsys):
    from conftest import ROOT
    from unetseg.cli import main as unetseg
    from unetseg.config.loading import load_params

    root = shared_dataset("stanford-background")
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    # the default's binary loss does not apply to classes: the change is refused, the file kept as it was
    assert unetseg(["classes", str(root / "classes.csv"), "--ignore", "15", "--params", str(params)]) == 1
    assert "train.loss 'bce_dice' does not apply" in capsys.readouterr().err
    assert params.read_text() == (ROOT / "params.yaml").read_text() and list(tmp_path.iterdir()) == [params]
    text = params.read_text().replace("loss: bce_dice", "loss: crossentropy_dice")
    text = text.replace("monitor: val_image_dice", "monitor: val_mean_iou")
    params.write_text(text)
    assert unetseg(["classes", str(root / "classes.csv"), "--ignore", "15", "--params", str(params)]) == 0
    loaded = load_params(params)
    assert loaded.classes.names[-1] == "foreground object" and loaded.classes.ignore == (15,)
    assert "# loss weight per class" in params.read_text()  # comments kept


def test_stanford_label_maps_are_read_as_indices_and_resized_without_new_labels():
    """A real 4-bit palette mask with unknown (15) pixels: indices, never the palette's colours;
    nearest-neighbour resizing to the model size keeps every label an original one, ignored pixels too."""
    root = shared_dataset("stanford-background")
    classes = ClassMap.from_params(Classes(**classes_from_table(root / "classes.csv", [15]), weights="none"))
    masks = sorted((root / "masks").iterdir())
    with_unknown = None
    for mask in masks[:200]:
        reading = read_labels(mask, classes)
        assert set(np.unique(reading.mask)) <= set(range(8)) | {IGNORE}
        if (reading.mask == IGNORE).mean() > 0.01:
            with_unknown = reading.mask
            break
    assert with_unknown is not None, "no mask with unknown pixels among the first 200"
    small = resize_truth(with_unknown, (64, 80), classes)
    assert small.shape == (64, 80) and set(np.unique(small)) <= set(np.unique(with_unknown))
    assert (small == IGNORE).any()
    before = pixel_counts(with_unknown, 8) / with_unknown.size
    after = pixel_counts(small, 8) / small.size
    assert np.abs(before - after).max() < 0.03  # the class shares survive the resize
    # averaging the indices (what resizing a picture does) would invent labels at boundaries
    averaged = np.asarray(Image.fromarray(with_unknown).resize((80, 64), Image.BILINEAR))
    assert not set(np.unique(averaged)) <= set(np.unique(with_unknown))
