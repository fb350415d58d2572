import pytest

from conftest import ROOT, real_params, tiny_params, write_yaml
from unetseg.params import ParamsError, load_params
from unetseg.presets import SEED, apply_preset


def _error(tmp_path, data) -> str:
    with pytest.raises(ParamsError) as info:
        load_params(write_yaml(tmp_path / "params.yaml", data))
    return str(info.value)


def test_project_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.train.lr == 1.0e-3
    assert params.preprocess.image_size == (128, 128)


def test_unknown_key_is_named(tmp_path):
    data = real_params()
    data["train"]["learning_rate"] = 0.1
    message = _error(tmp_path, data)
    assert "unknown train.learning_rate" in message and "allowed:" in message


def test_missing_key_is_named(tmp_path):
    data = real_params()
    del data["model"]["filters"]
    assert "missing model.filters" in _error(tmp_path, data)


def test_missing_section_is_named(tmp_path):
    data = real_params()
    del data["inference"]
    assert "missing inference" in _error(tmp_path, data)


def test_exponent_without_dot_is_explained(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("lr: 1.0e-3", "lr: 1e-3"))
    with pytest.raises(ParamsError) as info:
        load_params(tmp_path / "params.yaml")
    assert "train.lr" in str(info.value) and "1.0e-5" in str(info.value)
    assert str(tmp_path / "params.yaml") in str(info.value)


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("train", "epochs", 0, "train.epochs: must be >= 1"),
        ("train", "epochs", 2.5, "train.epochs: must be an integer"),
        ("train", "epochs", True, "train.epochs: must be an integer"),
        ("train", "optimizer", "sgd", "train.optimizer: must be one of"),
        ("split", "val_fraction", 1.0, "split.val_fraction: must be < 1"),
        ("split", "group_pattern", "([a-z", "split.group_pattern: not a valid regex"),
        ("split", "group_pattern", "^[a-z]+", "needs a capturing group"),
        ("data", "mask_pattern", "mask.gif", "data.mask_pattern: must contain '{stem}'"),
        ("data", "mask_pattern", "{stem}_{view}.gif", "data.mask_pattern"),
        ("augment", "contrast_range", [0.9, 0.5], "augment.contrast_range: lower bound"),
        ("augment", "contrast_range", [0.5], "augment.contrast_range: must be a list of 2"),
        ("augment", "flip_horizontal", "yes", "augment.flip_horizontal: must be true or false"),
        ("preprocess", "image_size", [100, 128], "divisible by 2**model.num_layers = 16"),
    ],
)
def test_bad_values_name_the_key(tmp_path, section, key, value, expected):
    data = real_params()
    data[section][key] = value
    assert expected in _error(tmp_path, data)


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml: cannot read params"):
        load_params(tmp_path / "nope.yaml")


def test_seed_preset_resolves_to_the_seed_values(tmp_path):
    path = write_yaml(tmp_path / "params.yaml", tiny_params())
    apply_preset(path, "seed")
    params = load_params(path)
    assert params.model.filters == 64 and params.model.num_layers == 4
    assert params.model.dropout == 0.5 and params.model.batch_norm is False
    assert params.train.optimizer == "rmsprop" and params.train.lr == 1.0e-5
    assert params.train.loss == "binary_crossentropy"
    assert params.train.batch_size == 32 and params.train.epochs == 5
    assert params.train.batch_size * params.train.shuffle_batches == 32 * 128
    assert params.preprocess.image_size == (128, 128)
    assert params.augment.brightness_max_delta == 0.3
    assert params.augment.contrast_range == (0.5, 0.7)
    assert params.augment.saturation_range == (0.5, 0.7)
    assert params.augment.flip_horizontal is False
    assert params.split.val_fraction == 0.2 and params.split.group_pattern == ""
    assert params.inference.threshold == 0.5
    assert params.inference.tta_flip is False and params.inference.largest_component is False
    assert params.train.keep == "last" and params.train.early_stopping_patience == 0
    assert params.train.reduce_lr_patience == 0


def test_preset_keeps_comments_and_other_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    changed = apply_preset(path, "seed")
    text = path.read_text()
    assert "# the seed's 64 trains" in text
    assert "lr: 1.0e-05" in text  # a float PyYAML reads back as a float
    assert changed["train.lr"] == (1.0e-3, 1.0e-5)
    assert load_params(path).data == load_params(ROOT / "params.yaml").data
    assert set(changed) <= {f"{s}.{k}" for s, values in SEED.items() for k in values}


def test_unknown_preset_is_refused(tmp_path):
    path = write_yaml(tmp_path / "params.yaml", real_params())
    before = path.read_text()
    with pytest.raises(ParamsError, match="unknown preset 'fast'"):
        apply_preset(path, "fast")
    assert path.read_text() == before
