import pytest

from conftest import ROOT, real_params, tiny_params, write_yaml
from unetseg.config.checks import ParamsError
from unetseg.config.loading import load_params
from unetseg.config.presets import SEED, apply_preset


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


def test_the_mirror_average_needs_a_network_trained_on_mirrored_images(tmp_path):
    data = real_params()
    data["augment"]["flip_horizontal"] = False
    message = _error(tmp_path, data)
    assert "inference.tta_flip true" in message and "augment.flip_horizontal false" in message
    data["inference"]["tta_flip"] = False  # both off: chiral data, as text
    assert load_params(write_yaml(tmp_path / "params.yaml", data)).inference.tta_flip is False


def test_params_are_read_as_dvc_reads_them(tmp_path):
    """YAML 1.2, as DVC: `1e-3` is a float (YAML 1.1 made it a string), `yes` is a string, not true."""
    from dvc.utils.serialize import load_yaml

    text = (ROOT / "params.yaml").read_text().replace("lr: 1.0e-3", "lr: 1e-3")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").train.lr == 1e-3 == load_yaml(tmp_path / "params.yaml")["train"]["lr"]
    (tmp_path / "params.yaml").write_text(text.replace("deterministic: true", "deterministic: yes"))
    assert load_yaml(tmp_path / "params.yaml")["base"]["deterministic"] == "yes"
    with pytest.raises(ParamsError, match="base.deterministic: must be true or false, got str 'yes'") as info:
        load_params(tmp_path / "params.yaml")
    assert str(tmp_path / "params.yaml") in str(info.value)


def test_sections_check_themselves_when_built_in_code():
    """The CLI builds sections directly: they are checked as the file's are."""
    from unetseg.config.params import Base, Data, Inference, Preprocess

    with pytest.raises(ParamsError, match="base.workers: must be >= 0, got -1"):
        Base(seed=0, deterministic=True, workers=-1)
    with pytest.raises(ParamsError, match="inference.threshold: must be < 1"):
        Inference(1.5, False, False)
    with pytest.raises(ParamsError, match="data.mask_pattern: must contain"):
        Data("a", "b", "mask.gif", "", 10, 0.05, False)
    with pytest.raises(ParamsError, match="inference.tta_flip: must be true or false, got int 0"):
        Inference(0.5, 0, False)
    assert Preprocess([64, 64], 2).image_size == (64, 64)  # lists from YAML, tuples in code


def test_cli_options_are_checked_by_the_params_rules(tmp_path, capsys):
    from unetseg.cli import main as unetseg

    assert unetseg(["check-data", str(tmp_path), str(tmp_path), "--workers", "-1"]) == 1
    assert "base.workers: must be >= 0, got -1" in capsys.readouterr().err
    assert unetseg(["predict", "m.keras", str(tmp_path), str(tmp_path / "out"), "--threshold", "1.5"]) == 1
    assert "inference.threshold: must be < 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "train, expected",
    [
        ({"epochs": 5, "early_stopping_patience": 5}, "train.early_stopping_patience 5 with train.epochs 5"),
        ({"epochs": 5, "reduce_lr_patience": 6, "schedule": "constant"}, "train.reduce_lr_patience 6 with train.epochs 5"),
        ({"epochs": 9, "early_stopping_patience": 2, "reduce_lr_patience": 2, "schedule": "constant"},
         "train.reduce_lr_patience 2 with train.early_stopping_patience 2"),
        ({"epochs": 9, "reduce_lr_patience": 2, "schedule": "cosine", "warmup_epochs": 0},
         "train.reduce_lr_patience 2 with train.schedule cosine and train.warmup_epochs 0"),
        ({"epochs": 9, "reduce_lr_patience": 2, "schedule": "constant", "warmup_epochs": 1},
         "train.reduce_lr_patience 2 with train.schedule constant and train.warmup_epochs 1"),
        ({"epochs": 3, "warmup_epochs": 3}, "train.warmup_epochs 3 with train.epochs 3: the warm-up must be shorter"),
    ],
)
def test_patience_settings_that_cannot_take_effect_are_refused(tmp_path, train, expected):
    assert expected in _error(tmp_path, tiny_params(train=train))


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("train", "epochs", 0, "train.epochs: must be >= 1"),
        ("train", "epochs", 2.5, "train.epochs: must be an integer"),
        ("train", "epochs", True, "train.epochs: must be an integer"),
        ("train", "optimizer", "sgd", "train.optimizer: must be one of"),
        ("train", "schedule", "step", "train.schedule: must be one of ['constant', 'cosine', 'poly']"),
        ("train", "steps_per_epoch", -1, "train.steps_per_epoch: must be >= 0"),
        ("train", "warmup_epochs", -0.5, "train.warmup_epochs: must be >= 0"),
        ("patches", "validation_tiles", 0, "patches.validation_tiles: must be >= 1"),
        ("split", "val_fraction", 1.0, "split.val_fraction: must be < 1"),
        ("split", "group_pattern", "([a-z", "split.group_pattern: not a valid regex"),
        ("split", "group_pattern", "^[a-z]+", "needs a capturing group"),
        ("split", "groups", "patients.csv", "split.groups and split.group_pattern both give the groups"),
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
    # from a file that had patches on, another monitor and strategy: the post's settings all the same
    path = write_yaml(tmp_path / "params.yaml", tiny_params(
        train={"epochs": 18, "warmup_epochs": 1, "monitor": "val_dice", "strategy": "mirrored"},
        patches={"enabled": True, "size": [32, 32]}))
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
    # the seed's constant rate, one pass an epoch, no average of the weights
    assert params.train.schedule == "constant" and params.train.warmup_epochs == 0
    assert params.train.steps_per_epoch == 0 and params.train.ema is False
    # every image squashed to 128x128, on one device
    assert params.patches.enabled is False and params.train.strategy == "auto"
    assert params.train.monitor == "val_loss"


def test_seed_preset_refuses_a_file_with_classes_and_leaves_it(tmp_path):
    path = write_yaml(tmp_path / "params.yaml", tiny_params(
        classes={"names": ["sky", "tree"], "values": [0, 1]}, train={"monitor": "val_mean_iou", "loss": "crossentropy"}))
    before = path.read_text()
    with pytest.raises(ParamsError, match=r"classes.names is \['sky', 'tree'\]: preset 'seed' cannot apply"):
        apply_preset(path, "seed")
    assert path.read_text() == before


def test_preset_keeps_comments_and_other_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    changed = apply_preset(path, "seed")
    text = path.read_text()
    assert "# first block's filters, doubled each level; the seed's 64 trains many times slower" in text
    assert load_params(path).train.lr == 1.0e-5
    assert changed["train.lr"] == (1.0e-3, 1.0e-5)
    assert load_params(path).data == load_params(ROOT / "params.yaml").data
    assert set(changed) <= {f"{s}.{k}" for s, values in SEED.items() for k in values}


def test_unknown_preset_is_refused(tmp_path):
    path = write_yaml(tmp_path / "params.yaml", real_params())
    before = path.read_text()
    with pytest.raises(ParamsError, match="unknown preset 'fast'"):
        apply_preset(path, "fast")
    assert path.read_text() == before


def test_the_command_line_defaults_are_the_shipped_params():
    """`unetseg check-data` takes its defaults from the schema (one home); the shipped params.yaml
    starts from the same values, so a user's first check and first run agree."""
    import dataclasses

    from unetseg.config.checks import default
    from unetseg.config.params import THRESHOLD, TTA_FLIP, Base, Data

    shipped = real_params()
    defaulted = [(cls, f.name) for cls in (Base, Data) for f in dataclasses.fields(cls)
                 if f.default is not dataclasses.MISSING]
    assert len(defaulted) == 8
    for cls, name in defaulted:
        assert default(cls, name) == shipped[cls.SECTION][name], f"{cls.SECTION}.{name}"
    # unetseg predict and export read no params: their inference defaults are the shipped ones
    assert (THRESHOLD, TTA_FLIP) == (shipped["inference"]["threshold"], shipped["inference"]["tta_flip"])


def test_an_encoder_wants_sides_divisible_by_32_and_weights_it_can_read(tmp_path):
    data = tiny_params(model={"encoder": "efficientnet_lite0"}, preprocess={"image_size": [48, 64]})
    assert _error(tmp_path, data).endswith("preprocess.image_size: 48x64 must be divisible by 32 (model.encoder "
                                            "efficientnet_lite0 halves it 5 times)")
    data = tiny_params(model={"encoder": "efficientnet_lite0", "encoder_weights": "weights.bin"},
                       preprocess={"image_size": [64, 64]})
    assert "model.encoder_weights: imagenet, none, or a path to a .pth or .weights.h5 file, got 'weights.bin'" in \
        _error(tmp_path, data)
    for outside in ("mine.pth", "/data/mine.pth", "weights/../mine.pth", "other/weights/mine.pth"):
        data["model"]["encoder_weights"] = outside  # where DVC would not see it replaced
        assert _error(tmp_path, data).endswith(
            f"model.encoder_weights: {outside} is not in weights/, the folder the train stage depends on: put the "
            "file there (e.g. weights/mine.pth), so that replacing it retrains")
    data["model"]["encoder"] = "none"  # the key is not read then: no folder asked
    assert load_params(write_yaml(tmp_path / "params.yaml", data)).model.encoder_weights == outside
    data["model"]["encoder"] = "efficientnet_lite0"
    for inside in ("weights/mine.pth", "./weights/lite0/mine.weights.h5"):
        data["model"]["encoder_weights"] = inside
        assert load_params(write_yaml(tmp_path / "params.yaml", data)).model.encoder_weights == inside  # read at training
