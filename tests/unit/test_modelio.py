"""Model files are code: files that would run code on load are refused, and never run."""

import json
import subprocess
import sys
import time
import zipfile

import keras
import pytest

from unetseg.core.errors import DataError
from unetseg.model.modelfile import load_model
from unetseg.model.unet import build_unet


@pytest.fixture
def good_model(tmp_path):
    path = tmp_path / "good.keras"
    build_unet((16, 16, 3), filters=2, num_layers=1).save(path)
    return path


def test_a_plain_unet_loads(good_model):
    assert load_model(good_model).output_shape == (None, 16, 16, 1)


def test_lambda_layer_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    inputs = keras.Input((4, 4, 1))
    # The lambda's bytecode is stored in the file; deserialising it would create the marker.
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")
    outputs = keras.layers.Lambda(payload)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran the payload once, here, on purpose
    with pytest.raises(DataError, match=r"lambda.keras: refused: .* Lambda layer"):
        load_model(path)
    assert not marker.exists()


def _rewrite_config(source, target, change):
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_config_naming_an_arbitrary_function_is_refused(good_model, tmp_path):
    marker = tmp_path / "payload-ran"

    def plant(config):
        layer = next(l for l in config["config"]["layers"] if l["class_name"] == "Conv2D")
        layer["config"]["activation"] = {
            "module": "os", "class_name": "function", "config": "system",
            "registered_name": "system", "args": [f"touch {marker}"],
        }

    crafted = tmp_path / "crafted.keras"
    _rewrite_config(good_model, crafted, plant)
    with pytest.raises(DataError, match=r"crafted.keras: refused: .* names os.function, outside Keras"):
        load_model(crafted)
    assert not marker.exists()


def test_not_a_model_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a zip")
    with pytest.raises(DataError, match="model.keras: not a Keras 3 model file"):
        load_model(path)
    with pytest.raises(DataError, match="missing.keras: model file not found"):
        load_model(tmp_path / "missing.keras")


def test_same_weights_give_the_same_file(tmp_path):
    """Saved twice, a second apart, from two processes: the same bytes, and it still loads."""
    code = (
        "import sys, keras\n"
        "from unetseg.model.unet import build_unet\n"
        "from unetseg.model.modelfile import save_model\n"
        "keras.utils.set_random_seed(0)\n"
        "save_model(build_unet((16, 16, 3), filters=2, num_layers=1), sys.argv[1])\n"
    )
    for name in ("a.keras", "b.keras"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True)
        time.sleep(1.1)  # a save date or zip timestamp would differ
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    model = keras.saving.load_model(tmp_path / "b.keras")
    assert model.count_params() == build_unet((16, 16, 3), filters=2, num_layers=1).count_params()
