"""Named groups of params, and a dataset's class table, applied to params.yaml in place (comments kept)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from unetseg.config.checks import ParamsError
from unetseg.config.loading import load_params

# The seed post's settings (../shared/DESIGN.md). The seed splits by image and unseeded;
# this preset splits by image, seeded by base.seed. Every image squashed to 128x128 (no
# patches), on one device (`auto` is one device unless several GPUs are visible).
SEED = {
    "split": {"val_fraction": 0.2, "group_pattern": ""},
    "preprocess": {"image_size": [128, 128]},
    "patches": {"enabled": False},
    "augment": {
        "brightness_max_delta": 0.3,
        "contrast_range": [0.5, 0.7],
        "saturation_range": [0.5, 0.7],
        "flip_horizontal": False,
    },
    "model": {"filters": 64, "num_layers": 4, "dropout": 0.5, "batch_norm": False, "encoder": "none"},
    "train": {
        "epochs": 5,
        "steps_per_epoch": 0,
        "batch_size": 32,
        "optimizer": "rmsprop",
        "lr": 1.0e-5,
        "schedule": "constant",
        "warmup_epochs": 0,
        "loss": "binary_crossentropy",
        "shuffle_batches": 128,
        "keep": "last",
        "ema": False,
        "early_stopping_patience": 0,
        "reduce_lr_patience": 0,
        "mixed_precision": False,
        "jit_compile": False,
        "monitor": "val_loss",  # Keras' own; nothing reads it with keep last and no early stopping
        "strategy": "auto",
    },
    "inference": {"threshold": 0.5, "tta_flip": False, "largest_component": False, "runtime": "keras",
                  "precision": "float32"},
}

PRESETS = {"seed": SEED}
# What a preset needs but will not overwrite, because it is the user's task rather than a setting:
# key -> (required value, why)
REQUIRES = {"seed": {"classes.names": ([], "the seed post segments one class against the background "
                                              "(binary masks); empty classes.names (and classes.values) first")}}


def apply_preset(params_path: str | Path, name: str) -> dict:
    """Set the preset's values in a params file; return {key: (old, new)} of what changed.

    Refused, with the file left as it was, where the file's task conflicts with the preset's.
    """
    if name not in PRESETS:
        raise ParamsError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    params = load_params(params_path)
    for key, (required, why) in REQUIRES.get(name, {}).items():
        section, _, field = key.partition(".")
        found = getattr(getattr(params, section), field)
        if list(found) != required:
            raise ParamsError(f"{params_path}: {key} is {list(found)}: preset {name!r} cannot apply: {why}")
    return set_params(params_path, PRESETS[name])


def set_params(params_path: str | Path, sections: dict) -> dict:
    """Set {section: {key: value}} in a params file, comments kept; return {key: (old, new)} of what changed.

    The result is validated before the file is replaced, so a failed change leaves it as it was.
    """
    path = Path(params_path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        document = yaml.load(path.read_text())
    except YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    changed = {}
    for section, values in sections.items():
        for key, value in values.items():
            if not isinstance(document, dict) or not isinstance(document.get(section), dict) \
                    or key not in document[section]:
                raise ParamsError(f"{path}: no {section}.{key} to set (a params file has every key: "
                                  "start from the project's params.yaml)")
            old = document[section][key]
            if isinstance(value, list) and isinstance(old, list):  # in place: the list keeps its style and comment
                if list(old) != value:
                    changed[f"{section}.{key}"] = (list(old), value)
                old[:] = value
            else:
                if old != value:
                    changed[f"{section}.{key}"] = (old, value)
                document[section][key] = value
    temporary = path.with_name(f".{path.name}.preset")
    with open(temporary, "w") as f:
        yaml.dump(document, f)
    try:
        load_params(temporary)
    except ParamsError:
        temporary.unlink()
        raise
    temporary.replace(path)
    return changed
